// TaskSupervisor::set_remote_pool(): the remote lane's setup, checked here
// and applied under the supervisor's mutex.

#include <mutex>

#include <atasker/pool_options.hpp>
#include <atasker/remote.hpp>
#include <atasker/supervisor.hpp>

#include "core/supervisor_impl.hpp"
#include "remote/redis_connection.hpp"
#include "remote/remote_lane.hpp"

namespace atasker {

void TaskSupervisor::set_remote_pool(const RemotePoolOptions& options) {
    detail::RedisUrl url = detail::parse_redis_url(options.url);
    PoolOptions pool;
    pool.pool_size = options.pool_size;
    pool.reserve_normal = options.reserve_normal;
    pool.reserve_high = options.reserve_high;
    pool.validate("remote pool");
    std::unique_lock lock(impl_->mutex);
    auto& lane = static_cast<detail::RemoteLane&>(impl_->lane(TaskType::remote));
    lane.setup(std::move(url), options.ns, pool, impl_->active, lock);
}

}  // namespace atasker
