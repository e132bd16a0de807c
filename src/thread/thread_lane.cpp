#include "thread/thread_lane.hpp"

#include <algorithm>
#include <thread>

namespace atasker::detail {
namespace {

PoolOptions default_options() {
    PoolOptions o;
    o.pool_size = std::max(2U, std::thread::hardware_concurrency());
    return o;
}

void store_progress(void* context, double value) noexcept {
    static_cast<std::atomic<float>*>(context)->store(static_cast<float>(value), std::memory_order_relaxed);
}

}  // namespace

ThreadLane::ThreadLane(LaneHost& host)
    : Lane(host, true),
      options_(default_options()),
      pool_(host.supervisor_mutex(), *this,
            {.name = "thread pool",
             .critical_extra = ThreadPool::critical_extra_threads,
             .yield_when_idle = true,
             .delegate_ends = true}) {
    admission_.configure(options_);
}

void ThreadLane::configure(const PoolOptions& options, bool active, std::unique_lock<SupervisorMutex>& lock) {
    const PoolOptions previous = options_;
    options_ = options;
    admission_.configure(options);
    if (!active) return;
    try {
        pool_.configure(options, lock);
    } catch (...) {
        // The pool keeps the options it had; threads started meanwhile
        // retire when idle, as above any lowered min_size.
        options_ = previous;
        admission_.configure(previous);
        pool_.configure(previous, lock);
        throw;
    }
    wake();
}

void ThreadLane::start(std::unique_lock<SupervisorMutex>& lock) {
    pool_.resume();
    pool_.configure(options_, lock);
}

void ThreadLane::describe(PoolInfo& info) const {
    info.options = options_;
    info.workers = pool_.threads();
    info.idle = pool_.idle();
}

void ThreadLane::run(const Job& job) noexcept {
    if (const std::exception_ptr failed = ThreadPool::initializer_error()) [[unlikely]] {
        job.task->set_error(failed);
        return;
    }
    job.task->run(RunContext{.progress = Progress(&store_progress, job.progress), .carrier = nullptr});
}

}  // namespace atasker::detail
