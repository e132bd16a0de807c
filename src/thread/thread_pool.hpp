#pragma once
// ThreadPool: the threads that run admitted thread tasks. Which task may run
// is the supervisor's business (its Admission); this class only keeps the
// right number of threads awake. Its state is guarded by the supervisor's
// mutex, which every member function expects held unless it says otherwise.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <atasker/detail/task_base.hpp>
#include <atasker/export.hpp>
#include <atasker/log.hpp>
#include <atasker/pool_options.hpp>

#include "core/admission.hpp"
#include "core/lane.hpp"
#include "core/supervisor_mutex.hpp"
#include "thread/sched_slice.hpp"

namespace atasker::detail {

class ATASKER_API ThreadPool {
public:
    /// What the pool's threads run: a lane. take() and finish() are called
    /// with the supervisor's mutex held; the others without it.
    class Host {
    public:
        /// The next job to run, recorded as started at `now` (wall-clock
        /// nanoseconds, read before locking); no task when there is none.
        virtual Job take(std::int64_t now) noexcept = 0;
        /// Runs the job on the calling thread.
        virtual void run(const Job& job) noexcept = 0;
        /// Records that the job ended at `now`; a failure leaves the line to
        /// log in `log_line`. False: the task is not over (it waits to run
        /// again).
        [[nodiscard]] virtual bool finish(const Job& job, std::int64_t now, std::string& log_line) = 0;
        /// After finish(), without the mutex: if the task `ended`, wakes its
        /// waiters, runs its callback, logs, releases; and whatever the lane
        /// does once a job is over.
        virtual void settle(const Job& job, bool ended, const std::string& log_line) noexcept = 0;
        /// A pool thread begins and ends (the process lane keeps a worker
        /// process per thread).
        virtual void thread_started() noexcept {}
        virtual void thread_exiting() noexcept {}
        /// Under the mutex: the last busy thread is back from its tasks
        /// (each settled): the supervisor may have become idle.
        virtual void quiet() noexcept {}
        /// Under the mutex, when a thread has slept a whole idle_timeout:
        /// whether the lane was busy meanwhile without its threads (the
        /// process lane: calls its puts started), so the thread stays.
        [[nodiscard]] virtual bool busy_without_threads() const noexcept { return false; }

    protected:
        ~Host() = default;
    };

    /// How a pool's threads behave.
    struct Behaviour {
        const char* name;  ///< "thread pool", "process pool": in errors and logs
        /// How far critical tasks may grow the pool past its capacity
        /// (critical_extra_threads for tasks on threads, 0 for processes).
        std::size_t critical_extra = 0;
        /// A thread out of work yields its CPU once before it sleeps (see main()).
        bool yield_when_idle = false;
        /// A thread that ends a task and finds the mutex held leaves the end
        /// and its next take to the holder (delegated_steps.hpp). Only where
        /// the host's finish() and take() may run on any of the pool's
        /// threads (the process lane keeps a thread's riders in thread-local
        /// lists between the two).
        bool delegate_ends = false;
    };

    ThreadPool(SupervisorMutex& mutex, Host& host, Behaviour behaviour)
        : mutex_(mutex), host_(host), behaviour_(behaviour) {}
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    /// Applies new options and starts min_size threads (idempotent),
    /// releasing `lock` while it starts them.
    /// \throws SystemError when a thread cannot start (none of the threads
    /// this call reserved is left behind).
    void configure(const PoolOptions& options, std::unique_lock<SupervisorMutex>& lock);
    /// Wakes or starts threads for the tasks `admission` lets start now,
    /// past those already woken or starting.
    void wake_for(const Admission& admission) noexcept;
    /// `startable` more tasks could start now: wake or start threads for
    /// them. Critical tasks may grow the pool past its capacity, by at most
    /// critical_extra. New threads start once the mutex is released (see
    /// SupervisorMutex::defer_start); one that cannot start is logged, and
    /// its task waits for a free thread.
    void wake(std::size_t startable, bool critical_waiting) noexcept;
    /// Where an idle thread sleeps: a futex word of its own (see futex.hpp).
    /// Kept until the pool is destroyed, so a wake-up sent after unlocking
    /// never touches freed memory.
    /// Also the reservation a thread is started from (DeferredStart).
    struct Sleeper final : DeferredStart {
        ThreadPool* pool = nullptr;
        std::list<std::thread>::iterator self;  ///< its handle's place in threads_
        SchedSlice inherited;                   ///< from the thread that reserved it
        /// Set to 1 once its handle is stored in *self: it must not exit
        /// (where others join the handle) before that.
        std::atomic<std::uint32_t> launched{0};
        void start() noexcept override { pool->launch_reserved(*this); }

        std::atomic<std::uint32_t> word{0};  ///< set to 1 to wake it
        bool signaled = false;               ///< woken for a task (counted in signals_)
        /// Its task has returned and it is on its way to the mutex, where it
        /// takes the most urgent task: set and cleared by the thread itself.
        std::atomic<bool> ending{false};
        std::chrono::steady_clock::time_point retire_at = std::chrono::steady_clock::time_point::max();
        Sleeper* next = nullptr;             ///< in the idle list, or the spare list
    };
    /// Threads already woken or started that have not yet taken a task.
    [[nodiscard]] std::size_t pending() const noexcept { return signals_ + starting_; }
    /// Makes idle threads exit once nothing is left to take.
    void begin_stop();
    /// Clears the stop flag so the pool serves again (start() after stop()).
    void resume() noexcept { stopping_ = false; }
    /// Without the mutex held: joins every thread that has exited; with
    /// `all`, first waits for every thread to exit.
    void join(std::unique_lock<SupervisorMutex>& lock, bool all);

    [[nodiscard]] std::size_t threads() const noexcept { return count_; }
    /// Threads running tasks, from taking the first until they are back at
    /// the mutex after settling the last one.
    [[nodiscard]] std::size_t busy() const noexcept { return busy_; }
    /// True once no thread runs, not even one on its way out.
    [[nodiscard]] bool empty() const noexcept { return count_ == 0 && exiting_ == 0; }
    /// Threads waiting for work: asleep, or yielding before they sleep.
    [[nodiscard]] std::size_t idle() const noexcept { return idle_ + yielding_; }
    /// Threads whose task has returned and that have not yet had the mutex
    /// since: each takes the most urgent task once it has.
    [[nodiscard]] std::size_t ending() const noexcept;
    /// Threads asleep in the idle list (a yielding one takes the mutex again by itself).
    [[nodiscard]] std::size_t sleeping() const noexcept { return idle_; }
    [[nodiscard]] const PoolOptions& options() const noexcept { return options_; }

    /// On a pool thread whose PoolOptions::thread_initializer threw: the
    /// error every task it takes fails with (null otherwise, and on any
    /// other thread).
    [[nodiscard]] static std::exception_ptr initializer_error() noexcept;

    /// The host of the pool whose thread calls this (nullptr on any other
    /// thread): a supervisor tells its own threads by it.
    [[nodiscard]] static const Host* current_host() noexcept;

    /// How far critical tasks may grow the pool past its capacity: a flood of
    /// critical tasks must not exhaust the system's threads.
    static constexpr std::size_t critical_extra_threads = 64;

private:
    /// Under the mutex: counts a new thread and makes its place; the thread
    /// starts from the returned Sleeper (launch()).
    Sleeper& reserve();
    /// Under the mutex: takes back a reservation whose thread did not start.
    void unreserve(Sleeper& me) noexcept;
    /// Without the mutex: starts the reserved thread; its error when it
    /// could not (the reservation then stands until unreserve()).
    std::exception_ptr launch(Sleeper& me) noexcept;
    /// Without the mutex: launch() for defer_start(), unreserving and
    /// logging on failure.
    void launch_reserved(Sleeper& me) noexcept;
    enum class Woken { signaled, changed, timed_out };
    /// Waits idle on `me` until wake() picks it, the pool changes (stop,
    /// resize) or, when it may retire, idle_timeout passes.
    /// A standby thread waits with a short time slice (`slice`, see
    /// sched_slice.hpp), so that it preempts a computing thread when woken.
    Woken sleep(Sleeper& me, std::unique_lock<SupervisorMutex>& lock, SchedSlice& slice);
    /// Wakes every idle thread to look at a changed pool (stop, resize).
    void wake_all_idle() noexcept;
    /// The most threads that may wait idle: capacity, plus two on standby
    /// for critical tasks.
    [[nodiscard]] std::size_t idle_limit() const noexcept;
    /// Whether this is a thread pool grown past its capacity: its threads
    /// beyond it are there for critical tasks.
    [[nodiscard]] bool on_standby() const noexcept {
        return behaviour_.critical_extra > 0 && count_ > options_.capacity();
    }
    void main(Sleeper& me);
    /// Runs `taken` and the tasks it takes after; a task that is not
    /// critical runs with the thread's own time slice.
    void run_chain(Sleeper& me, Job job, SchedSlice& slice);
    /// What a thread does under the mutex between two tasks: records the end
    /// of `job` and takes the next one. A DelegatedStep: the holder of the
    /// mutex may do it for the thread.
    struct EndAndTake final : DelegatedStep {
        EndAndTake(ThreadPool& pool, Sleeper& me, std::string& log_line) noexcept
            : pool(pool), me(me), log_line(log_line) {}
        void run() noexcept override;
        ThreadPool& pool;
        Sleeper& me;
        std::string& log_line;  ///< a failure's line, for settle()
        Job job;                ///< in: the job that ended
        std::int64_t now = 0;   ///< in: when it ended (read before locking)
        Job next;               ///< out: the next job, or none
        bool ended = false;     ///< out: finish()'s answer
    };
    /// Without the mutex: runs `step` under it, on this thread or, where
    /// the pool delegates ends, on the holder's; returns once it ran.
    void end_and_take(EndAndTake& step) noexcept;

    SupervisorMutex& mutex_;
    Host& host_;
    Behaviour behaviour_;
    PoolOptions options_;
    std::condition_variable_any exited_;   // join(all) waits here
    std::deque<Sleeper> sleepers_;     // one per thread that ever ran at once
    Sleeper* spare_sleepers_ = nullptr;
    Sleeper* idle_list_ = nullptr;     // idle threads, the most recently idle first
    std::list<std::thread> threads_;
    std::list<std::thread> exited_threads_;
    std::size_t count_ = 0;
    std::size_t busy_ = 0;      // threads in run_chain(): counted per chain, not per task
    std::size_t idle_ = 0;      // threads in idle_list_
    std::size_t yielding_ = 0;  // threads yielding their CPU once before they sleep
    std::size_t signals_ = 0;   // threads woken for a task that have not yet taken the mutex
    std::size_t starting_ = 0;  // threads started that have not yet taken the lock
    std::size_t exiting_ = 0;   // threads past their last task, not yet exited
    bool stopping_ = false;
};

}  // namespace atasker::detail
