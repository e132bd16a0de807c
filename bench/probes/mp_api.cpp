// Configure-time probe: the process-pool calls atasker-bench makes compile.
#include <tuple>

#include <atasker/atasker.hpp>
#include <boost/fiber/future.hpp>

inline const atasker::MpTask probe_square{"atasker_bench.probe_square", [](int x) { return x * x; }};

int main() {
    atasker::init();
    atasker::TaskSupervisor sup;
    atasker::PoolOptions pool;
    pool.pool_size = 2;
    pool.min_size = 2;
    sup.set_mp_pool(pool);
    sup.start();
    atasker::TaskOptions options;
    options.supervisor = &sup;
    auto t = atasker::background_task(probe_square, options)(7);
    boost::fibers::future<int> f = atasker::co_mp_apply(probe_square, std::tuple{7}, options);
    return t.get() + f.get() - 98;
}
