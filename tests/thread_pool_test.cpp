// ThreadPool on its own, through its private header, with a host that hands
// out tasks from a plain queue: which thread a wake-up goes to, and when the
// pool starts a thread. The supervisor's behaviour on top of it is in
// supervisor_test.cpp.

#include <doctest/doctest.h>

#include <deque>
#include <functional>
#include <future>
#include <latch>
#include <mutex>
#include <thread>

#include <sys/resource.h>

#include "thread/sched_slice.hpp"
#include "core/supervisor_mutex.hpp"
#include "thread/thread_pool.hpp"

namespace {

using atasker::PoolOptions;
using atasker::Priority;
using atasker::detail::calling_thread_slice;
using atasker::detail::SchedSlice;
using atasker::detail::SupervisorMutex;
using atasker::detail::TaskBase;
using atasker::detail::Job;
using atasker::detail::ThreadPool;

struct FnTask final : TaskBase {
    explicit FnTask(std::function<void()> body, Priority priority = Priority::normal) : fn(std::move(body)) {
        rank = static_cast<std::uint8_t>(atasker::priority_rank(priority));
    }
    void run(const atasker::detail::RunContext&) noexcept override { fn(); }
    std::function<void()> fn;
};

/// Hands out what the test queued, most urgent first: a critical task goes
/// to the front. Its state, like the pool's, is guarded by the mutex.
struct QueueHost final : SupervisorMutex::Host, ThreadPool::Host {
    SupervisorMutex mutex{*this};
    ThreadPool pool{mutex, *this,
                    {.name = "thread pool", .critical_extra = ThreadPool::critical_extra_threads, .yield_when_idle = true}};
    std::deque<TaskBase*> queue;
    bool critical_queued = false;

    /// With the mutex held: queues `task` and wakes a thread for it, as a put does.
    void put(TaskBase* task) {
        const bool critical = task->priority() == Priority::critical;
        if (critical) {
            queue.push_front(task);
        } else {
            queue.push_back(task);
        }
        critical_queued = critical_queued || critical;
        pool.wake(1, critical_queued);
    }

    // SupervisorMutex::Host
    void queue_from_inbox(TaskBase*) noexcept override {}
    bool hungry() const noexcept override { return false; }

    // ThreadPool::Host
    Job take(std::int64_t) noexcept override {
        if (queue.empty()) return {};
        TaskBase* t = queue.front();
        queue.pop_front();
        critical_queued = false;
        return {.task = t, .progress = nullptr, .ticket = 0};
    }
    void run(const Job& job) noexcept override { job.task->run({}); }
    bool finish(const Job&, std::int64_t, std::string&) override { return true; }
    void settle(const Job&, bool, const std::string&) noexcept override {}

    ~QueueHost() {
        std::unique_lock lock(mutex);
        pool.begin_stop();
        pool.join(lock, true);
    }
};

/// A pool of one thread, busy with a task that returns when told to.
struct BusyPool {
    std::latch started{1};
    std::promise<void> release;
    std::promise<std::thread::id> busy_thread;
    FnTask busy{[this] {
        busy_thread.set_value(std::this_thread::get_id());
        started.count_down();
        release.get_future().wait();
    }};
    QueueHost host;  // after the task: its end joins the thread that ran it

    BusyPool() {
        PoolOptions options;
        options.pool_size = 1;
        options.min_size = 1;
        std::unique_lock lock(host.mutex);
        host.pool.configure(options, lock);
        host.put(&busy);
    }
};

}  // namespace

TEST_CASE("thread pool: a critical task put as a thread's task returns goes to that thread, not to a new one" *
          doctest::timeout(60)) {
    std::promise<std::thread::id> critical_thread;
    FnTask critical([&] { critical_thread.set_value(std::this_thread::get_id()); }, Priority::critical);
    BusyPool busy;  // after the task it runs
    busy.started.wait();
    {
        // The pool's one thread is busy: a critical task put now would get
        // a thread of its own. Let the busy thread's task return while the
        // mutex is held: the thread stops at the mutex, on its way to take
        // the next task.
        std::unique_lock lock(busy.host.mutex);
        busy.release.set_value();
        while (busy.host.pool.ending() == 0) std::this_thread::yield();
        busy.host.put(&critical);
        CHECK(busy.host.pool.threads() == 1);
    }
    CHECK(critical_thread.get_future().get() == busy.busy_thread.get_future().get());
    std::unique_lock lock(busy.host.mutex);
    CHECK(busy.host.pool.threads() == 1);
}

TEST_CASE("thread pool: a critical task with no thread at hand gets a new one at once" * doctest::timeout(60)) {
    std::promise<void> critical_ran;
    FnTask critical([&] { critical_ran.set_value(); }, Priority::critical);
    BusyPool busy;
    busy.started.wait();
    {
        std::unique_lock lock(busy.host.mutex);
        busy.host.put(&critical);
        CHECK(busy.host.pool.threads() == 2);
    }
    // It runs while the pool's own thread is still busy.
    critical_ran.get_future().get();
    busy.release.set_value();
}

namespace {
/// What a task saw of the thread that ran it.
struct Seen {
    std::thread::id thread;
    std::uint64_t slice = 0;
    int nice = 0;
};
Seen seen_here() { return {std::this_thread::get_id(), calling_thread_slice(), getpriority(PRIO_PROCESS, 0)}; }

/// Whether the kernel gives a thread a shorter slice than the calling
/// thread's (`own`) when asked; says why not when it does not.
bool short_slice_granted(std::uint64_t own) {
    bool granted = false;  // on a thread of its own: the slice stays with it
    std::thread([&] {
        SchedSlice probe;
        probe.shorten();
        granted = calling_thread_slice() == SchedSlice::short_ns;
    }).join();
    if (own <= SchedSlice::short_ns || !granted)
        MESSAGE("this kernel grants no shorter time slice (Linux before 6.12, or a seccomp filter): nothing to check");
    return own > SchedSlice::short_ns && granted;
}

/// Waits until `n` threads of the pool sleep in its idle list.
void wait_sleeping(QueueHost& host, std::size_t n) {
    for (;;) {
        {
            std::unique_lock lock(host.mutex);
            if (host.pool.sleeping() == n) return;
        }
        std::this_thread::yield();
    }
}
}  // namespace

TEST_CASE("thread pool: a standby thread waits with a short time slice; a task that is not critical runs with the "
          "thread's own" * doctest::timeout(60)) {
    const std::uint64_t own = calling_thread_slice();
    if (!short_slice_granted(own)) return;
    std::promise<Seen> first, second, normal;
    FnTask first_critical([&] { first.set_value(seen_here()); }, Priority::critical);
    FnTask second_critical([&] { second.set_value(seen_here()); }, Priority::critical);
    FnTask normal_task([&] { normal.set_value(seen_here()); });
    BusyPool busy;  // its one thread busy: critical tasks get a thread above capacity
    busy.started.wait();
    // Put from a thread with a nice value of its own, which the pool thread
    // started for the task inherits and keeps.
    std::thread([&] {
        CHECK(setpriority(PRIO_PROCESS, 0, 5) == 0);  // raising it needs no privilege
        std::unique_lock lock(busy.host.mutex);
        busy.host.put(&first_critical);
    }).join();
    const Seen a = first.get_future().get();
    CHECK(a.slice == own);  // started for the task, not yet on standby
    wait_sleeping(busy.host, 1);  // that thread, above capacity: on standby
    {
        std::unique_lock lock(busy.host.mutex);
        busy.host.put(&second_critical);
    }
    const Seen b = second.get_future().get();
    CHECK(b.thread == a.thread);
    CHECK(b.slice == SchedSlice::short_ns);
    CHECK(b.nice == 5);
    wait_sleeping(busy.host, 1);
    {
        std::unique_lock lock(busy.host.mutex);
        busy.host.put(&normal_task);
    }
    const Seen c = normal.get_future().get();
    CHECK(c.thread == a.thread);
    CHECK(c.slice == own);
    CHECK(c.nice == 5);
    busy.release.set_value();
}

TEST_CASE("thread pool: a thread started by a critical task on a standby thread gives back its starter's own slice" *
          doctest::timeout(60)) {
    const std::uint64_t own = calling_thread_slice();
    if (!short_slice_granted(own)) return;
    std::promise<Seen> first, inner, done_first, done_second;
    FnTask first_critical([&] { first.set_value(seen_here()); }, Priority::critical);
    BusyPool busy;  // its one thread busy: critical tasks get threads above capacity
    busy.started.wait();
    {
        std::unique_lock lock(busy.host.mutex);
        busy.host.put(&first_critical);
    }
    const Seen a = first.get_future().get();
    wait_sleeping(busy.host, 1);  // on standby, with the short slice
    // A critical task on the standby thread puts another: with no thread
    // idle, the pool starts one, which inherits the short slice.
    std::latch inner_ran{1};
    FnTask inner_critical(
        [&] {
            inner.set_value(seen_here());
            inner_ran.count_down();
        },
        Priority::critical);
    FnTask outer_critical(
        [&] {
            {
                std::unique_lock lock(busy.host.mutex);
                busy.host.put(&inner_critical);
            }
            inner_ran.wait();
        },
        Priority::critical);
    {
        std::unique_lock lock(busy.host.mutex);
        busy.host.put(&outer_critical);
    }
    wait_sleeping(busy.host, 2);
    const Seen b = inner.get_future().get();
    CHECK(b.thread != a.thread);
    CHECK(b.slice == SchedSlice::short_ns);
    // Two tasks that are not critical, the first waiting for the second, so
    // each runs on one of the two threads: both run with the putter's slice.
    std::promise<void> second_ran;
    FnTask first_normal([&] {
        second_ran.get_future().wait();
        done_first.set_value(seen_here());
    });
    FnTask second_normal([&] {
        done_second.set_value(seen_here());
        second_ran.set_value();
    });
    {
        std::unique_lock lock(busy.host.mutex);
        busy.host.put(&first_normal);
        busy.host.put(&second_normal);
    }
    const Seen c = done_first.get_future().get();
    const Seen d = done_second.get_future().get();
    CHECK(c.thread != d.thread);
    CHECK(((c.thread == a.thread && d.thread == b.thread) || (c.thread == b.thread && d.thread == a.thread)));
    CHECK(c.slice == own);
    CHECK(d.slice == own);
    busy.release.set_value();
}
