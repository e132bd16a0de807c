// Configure-time probe: the thread-pool calls atasker-bench makes compile.
#include <atasker/atasker.hpp>

int main() {
    atasker::TaskSupervisor sup;
    atasker::PoolOptions pool;
    pool.pool_size = 2;
    pool.min_size = 2;
    sup.set_thread_pool(pool);
    sup.start();
    atasker::TaskOptions options;
    options.priority = atasker::Priority::critical;
    options.supervisor = &sup;
    auto t = atasker::background_task([] { return 1; }, options)();
    const int r = t.get();
    atasker::StopOptions stop;
    stop.wait = true;
    sup.stop(stop);
    return r - 1;
}
