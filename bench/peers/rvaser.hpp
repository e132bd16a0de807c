#pragma once
/// \file rvaser.hpp
/// rvaser's thread_pool 4.0 (Debian libthread-pool-dev): per-thread queues
/// with task stealing; every Submit() makes a packaged_task and a future.

#if ATASKER_BENCH_HAVE_THREAD_POOL

#include <thread_pool/thread_pool.hpp>

namespace atasker_bench {

class RvaserPool {
public:
    static constexpr const char* name = "rvaser thread_pool";

    explicit RvaserPool(unsigned threads) : pool_(threads) {}

    template <class F>
    void post(F&& f) {
        (void)pool_.Submit(std::forward<F>(f));  // the future is what every caller pays for
    }

private:
    thread_pool::ThreadPool pool_;
};

}  // namespace atasker_bench

#endif
