#pragma once
/// \file tbb.hpp
/// oneTBB, three ways: a task_arena of N threads fed with enqueue() (a pool
/// proper); a task_group whose run() spawns into an arena with N worker
/// slots; and the same task_group used from outside any arena, which on a
/// small machine gets fewer workers than N (see TbbImplicitTaskGroupPool).

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

    // The arena has a slot for each submitting thread and `threads` for
    // workers, and global_control lets oneTBB start that many. A submitter
    // enters the arena for each run(), so its tasks go to its slot there and
    // the workers steal them from it. Slots for submitters that never come
    // cost oneTBB dearly (1M tiny tasks from one submitter on 2 workers:
    // 2.2M tasks/s with its own slot alone, 1.6M with one slot to spare,
    // 0.9M with three), so a scenario says how many submitters it has.
    explicit TbbTaskGroupPool(unsigned threads, unsigned submitters = 1)
        : limit_(oneapi::tbb::global_control::max_allowed_parallelism, threads + 1),
          arena_(static_cast<int>(threads + submitters), submitters) {}
    ~TbbTaskGroupPool() {
        arena_.execute([this] { group_.wait(); });
    }

    template <class F>
    void post(F&& f) {
        arena_.execute([&] { group_.run(std::forward<F>(f)); });
    }

private:
    oneapi::tbb::global_control limit_;
    oneapi::tbb::task_arena arena_;
    oneapi::tbb::task_group group_;
};

/// A task_group used from outside any arena, as a program that never makes
/// one would: run() spawns into the submitting thread's implicit arena, whose
/// concurrency is the machine's (this_task_arena::max_concurrency()) with one
/// slot held for that thread, whatever global_control allows. On 2 CPUs that
/// leaves one worker: workers() says how many.
class TbbImplicitTaskGroupPool {
public:
    static constexpr const char* name = "oneTBB task_group, implicit arena";

    explicit TbbImplicitTaskGroupPool(unsigned threads)
        : limit_(oneapi::tbb::global_control::max_allowed_parallelism, threads + 1) {}
    ~TbbImplicitTaskGroupPool() { group_.wait(); }

    template <class F>
    void post(F&& f) {
        group_.run(std::forward<F>(f));
    }

    /// Worker threads the calling thread's implicit arena admits.
    [[nodiscard]] static int workers() { return oneapi::tbb::this_task_arena::max_concurrency() - 1; }

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
