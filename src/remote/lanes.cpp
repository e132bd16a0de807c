// The supervisor's lanes, by TaskType: the core knows them only as Lanes.
// Built without the remote lane (-Dremote=disabled, or no hiredis), the
// remote slot holds a lane that refuses every task and says why.

#include "core/lane.hpp"
#include "process/process_lane.hpp"
#include "thread/thread_lane.hpp"
#ifdef ATASKER_REMOTE
#include "remote/remote_lane.hpp"
#else
#include "remote/remote_off.hpp"
#endif

namespace atasker::detail {

#ifndef ATASKER_REMOTE
namespace {

/// TaskType::remote in a library built without the remote lane.
class RemoteLaneOff final : public Lane {
public:
    explicit RemoteLaneOff(LaneHost& host) : Lane(host, false) {}
    [[nodiscard]] const char* refusal() const noexcept override { return remote_off_message; }
    void configure(const PoolOptions&, bool, std::unique_lock<SupervisorMutex>&) override {}
    void start(std::unique_lock<SupervisorMutex>&) override {}
    void wake() noexcept override {}
    void describe(PoolInfo&) const override {}
    void begin_stop() override {}
    void join(std::unique_lock<SupervisorMutex>&, bool) override {}
    [[nodiscard]] bool empty() const noexcept override { return true; }
    [[nodiscard]] bool busy() const noexcept override { return false; }
    [[nodiscard]] bool runs_this_thread() const noexcept override { return false; }
};

}  // namespace
#endif

std::vector<std::unique_ptr<Lane>> make_lanes(LaneHost& host) {
    std::vector<std::unique_ptr<Lane>> lanes;
    lanes.push_back(std::make_unique<ThreadLane>(host));   // TaskType::thread
    lanes.push_back(std::make_unique<ProcessLane>(host));  // TaskType::mp
#ifdef ATASKER_REMOTE
    lanes.push_back(std::make_unique<RemoteLane>(host));  // TaskType::remote
#else
    lanes.push_back(std::make_unique<RemoteLaneOff>(host));
#endif
    return lanes;
}

}  // namespace atasker::detail
