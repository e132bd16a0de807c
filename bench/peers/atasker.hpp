#pragma once
/// \file atasker.hpp
/// Our side: a TaskSupervisor with a thread pool of N, fed with
/// background_task (task records kept, priorities honoured).

#if ATASKER_BENCH_HAVE_CORE

#include <atasker/atasker.hpp>

namespace atasker_bench {

class AtaskerPool {
public:
    static constexpr const char* name = "atasker-cpp background_task";

    // Options are filled field by field: g++ 12 flags designated initializers
    // that leave members out under -Wextra (-Wmissing-field-initializers).
    explicit AtaskerPool(unsigned threads, atasker::Priority priority = atasker::Priority::low) {
        atasker::PoolOptions pool;
        pool.pool_size = threads;
        pool.min_size = threads;
        supervisor_.set_thread_pool(pool);
        supervisor_.start();
        low_.priority = priority;
        low_.supervisor = &supervisor_;
        critical_.priority = atasker::Priority::critical;
        critical_.supervisor = &supervisor_;
    }
    AtaskerPool(const AtaskerPool&) = delete;
    AtaskerPool& operator=(const AtaskerPool&) = delete;
    ~AtaskerPool() {
        atasker::StopOptions stop;
        stop.wait = true;
        supervisor_.stop(stop);
    }

    /// Fire and forget: the handle is dropped, the supervisor owns the task.
    template <class F>
    void post(F&& f) {
        (void)atasker::background_task(std::forward<F>(f), low_)();
    }
    template <class F>
    void post_low(F&& f) {
        (void)atasker::background_task(std::forward<F>(f), low_)();
    }
    template <class F>
    void post_critical(F&& f) {
        (void)atasker::background_task(std::forward<F>(f), critical_)();
    }

    [[nodiscard]] atasker::TaskSupervisor& supervisor() { return supervisor_; }

private:
    atasker::TaskSupervisor supervisor_;
    atasker::TaskOptions low_;  // the pool's own priority, low by default
    atasker::TaskOptions critical_;
};

}  // namespace atasker_bench

#endif
