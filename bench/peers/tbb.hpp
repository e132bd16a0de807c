#pragma once
/// \file tbb.hpp
/// oneTBB, two ways: a task_arena of N threads fed with enqueue() (a pool
/// proper), and a task_group whose run() spawns into the caller's implicit
/// arena with the process limited to N worker threads.

#if ATASKER_BENCH_HAVE_TBB

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

namespace atasker_bench {

class TbbArenaPool {
public:
    static constexpr const char* name = "oneTBB task_arena";

    // Every slot goes to worker threads: the submitting thread never runs tasks.
    explicit TbbArenaPool(unsigned threads)
        : limit_(oneapi::tbb::global_control::max_allowed_parallelism, threads + 1),
          arena_(static_cast<int>(threads), 0) {}

    template <class F>
    void post(F&& f) {
        arena_.enqueue(std::forward<F>(f));
    }

private:
    oneapi::tbb::global_control limit_;
    oneapi::tbb::task_arena arena_;
};

class TbbTaskGroupPool {
public:
    static constexpr const char* name = "oneTBB task_group";

    // max_allowed_parallelism counts the submitting thread: threads + 1 gives
    // `threads` workers, and the submitter waits without joining in.
    explicit TbbTaskGroupPool(unsigned threads)
        : limit_(oneapi::tbb::global_control::max_allowed_parallelism, threads + 1) {}
    ~TbbTaskGroupPool() { group_.wait(); }

    template <class F>
    void post(F&& f) {
        group_.run(std::forward<F>(f));
    }

private:
    oneapi::tbb::global_control limit_;
    oneapi::tbb::task_group group_;
};

/// Two arenas sharing N workers: low-priority work in one, urgent work in a
/// priority::high one. oneTBB's answer to "critical tasks first"; it cannot
/// preempt a running task, so the urgent task waits for a worker to finish.
class TbbPriorityArenas {
public:
    static constexpr const char* name = "oneTBB arena priority::high";

    explicit TbbPriorityArenas(unsigned threads)
        : limit_(oneapi::tbb::global_control::max_allowed_parallelism, threads + 1),
          low_(static_cast<int>(threads), 0, oneapi::tbb::task_arena::priority::low),
          high_(static_cast<int>(threads), 0, oneapi::tbb::task_arena::priority::high) {}

    template <class F>
    void post_low(F&& f) {
        low_.enqueue(std::forward<F>(f));
    }
    template <class F>
    void post_critical(F&& f) {
        high_.enqueue(std::forward<F>(f));
    }

private:
    oneapi::tbb::global_control limit_;
    oneapi::tbb::task_arena low_;
    oneapi::tbb::task_arena high_;
};

}  // namespace atasker_bench

#endif
