#pragma once
// SupervisorMutex: the supervisor's one mutex, with the inbox of puts that do
// not take it (inbox.hpp). Such a put pushes its task and returns; the
// mutex's holders queue what the inbox holds, in batches:
//  * lock() and try_lock() only lock. A holder that reads or takes tasks
//    first queues what the inbox holds (drain_inbox(), a step of the core's
//    take, put, cancel and queries), so it sees every task pushed before: a
//    reader finds the record of every id a put returned, a pool thread takes
//    the most urgent task, and a put under the mutex comes after the same
//    thread's inbox puts (FIFO).
//  * While the thread pool is saturated ("not hungry": as many threads busy
//    as it may run), a pushed task waits in the inbox for the next holder,
//    which is the next pool thread to end a task: queued now, it would not
//    start any sooner. Pool threads then drain many tasks at once while the
//    submitter never touches the mutex.
//  * While the pool is hungry, a drained task could start at once, so
//    nobody may leave one in the inbox: the putter takes the mutex itself if
//    it is free, and unlock() looks at the inbox after releasing the mutex and
//    takes it back to queue what came meanwhile (the putter whose try_lock
//    failed counted on that).
// unlock() also sends the wake-ups decided under the mutex (defer_wake()) and
// starts the threads reserved under it (defer_start()), after releasing it:
// a woken thread does not block on the mutex at once, and nobody waits for
// the mutex while the system makes a thread. A thread pool thread that ends a
// task and finds the mutex held leaves that step (the end and the next take)
// to the holder (run_locked(), delegated_steps.hpp): another such thread
// runs it before it lets go; any other holder hands it back once it has.
//
// Locks, in the order they may be taken: this mutex, then the timers' mutex
// (timers.hpp) or the worker processes' own (worker_processes.hpp). Nothing
// that holds one of the latter calls back into the supervisor.
//
// Why (atasker-bench section 1, 2 vCPUs, 1 submitter): puts that took the
// mutex made it change hands between CPUs twice per task, and in slow rounds
// nearly every syscall was a futex on it, each a wake-up of an idle vCPU.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <atasker/detail/task_base.hpp>
#include <atasker/log.hpp>

#include "sync/delegated_steps.hpp"
#include "sync/full_fence.hpp"
#include "sync/futex.hpp"
#include "sync/inbox.hpp"

namespace atasker::detail {

/// A thread reserved under the mutex (counted, its place made) and started
/// once the mutex is released (ThreadPool).
class DeferredStart {
public:
    /// Without the mutex: starts the thread, or takes the reservation back
    /// and reports why it could not (the mutex taken again for that).
    virtual void start() noexcept = 0;
    DeferredStart* next_start = nullptr;  ///< in Wakeups::starts, until started

protected:
    ~DeferredStart() = default;
};

/// What was decided under the mutex and is done once it is released:
/// wake-ups of sleeping threads, threads to start, and what to log.
struct Wakeups {
    static constexpr std::size_t capacity = 8;  ///< more are sent at once, under the mutex
    std::array<std::atomic<std::uint32_t>*, capacity> words{};
    std::size_t count = 0;
    DeferredStart* starts = nullptr;   ///< threads to start, the last reserved first
    std::string error;                 ///< a thread that could not start
    std::string warnings;              ///< failed runs that will be retried, NUL between them
    std::size_t thresholds_lost = 0;   ///< tasks queued without their wait-time thresholds

    /// Sends them all, starts the threads, logs; without the mutex.
    void send() const noexcept {
        for (std::size_t i = 0; i < count; ++i) futex_wake(*words[i]);
        for (DeferredStart* s = starts; s != nullptr;) {
            DeferredStart* next = s->next_start;  // s is the started thread's from here on
            s->start();
            s = next;
        }
        if (!error.empty()) log_message(LogLevel::error, error);
        for (std::string_view rest = warnings; !rest.empty();) {
            const std::size_t end = rest.find('\0');
            log_message(LogLevel::warning, rest.substr(0, end));
            rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        }
        if (thresholds_lost > 0) {
            try {
                log(LogLevel::error,
                    "{} task(s) queued without their wait-time thresholds: the timers could not take them",
                    thresholds_lost);
            } catch (...) {  // no memory for the message either
            }
        }
    }
};

class SupervisorMutex {
public:
    class Host {
    public:
        /// With the mutex held: queues `oldest` and the tasks linked after it.
        virtual void queue_from_inbox(TaskBase* oldest) noexcept = 0;
        /// With the mutex held: whether a task queued now could start now.
        [[nodiscard]] virtual bool hungry() const noexcept = 0;

    protected:
        ~Host() = default;
    };

    explicit SupervisorMutex(Host& host) noexcept : host_(host) {}
    SupervisorMutex(const SupervisorMutex&) = delete;
    SupervisorMutex& operator=(const SupervisorMutex&) = delete;

    void lock() { mutex_.lock(); }
    [[nodiscard]] bool try_lock() noexcept { return mutex_.try_lock(); }
    void unlock() noexcept { unlock(false); }

    /// Without the mutex: runs `step` under it, on this thread if the mutex
    /// is free; else it is left to the holder, which runs it before it lets
    /// go if it is a thread that leaves steps itself, or else hands it back
    /// (delegated_steps.hpp). Returns once it ran.
    void run_locked(DelegatedStep& step) noexcept {
        if (mutex_.try_lock()) {
            step.run();
            unlock(true);
            return;
        }
        left_.push(step);
        full_fence();  // the holder letting go sees the step, or this sees the mutex free
        if (mutex_.try_lock()) {
            unlock(true);  // it runs the step, with any others left
        }
        if (DelegatedSteps::wait(step)) return;
        mutex_.lock();  // handed back
        step.run();
        unlock(true);
    }

    /// Without the mutex, just before lock(): see Inbox::prefetch.
    void prefetch_inbox() const noexcept { inbox_.prefetch(); }

    /// With the mutex held: unlock() wakes the thread sleeping on `word`
    /// (sent at once when the list is full).
    void defer_wake(std::atomic<std::uint32_t>& word) noexcept {
        deferred_ = true;
        if (wakeups_.count < Wakeups::capacity) {
            wakeups_.words[wakeups_.count++] = &word;
        } else {
            futex_wake(word);
        }
    }
    /// With the mutex held: unlock() starts the thread `start` reserved.
    void defer_start(DeferredStart& start) noexcept {
        deferred_ = true;
        start.next_start = wakeups_.starts;
        wakeups_.starts = &start;
    }
    /// With the mutex held: unlock() logs `error` (the first one deferred).
    void defer_error(std::string error) noexcept {
        deferred_ = true;
        if (wakeups_.error.empty()) wakeups_.error = std::move(error);
    }
    /// With the mutex held: unlock() logs `line` at warning level.
    void defer_warning(std::string line) noexcept {
        deferred_ = true;
        if (wakeups_.warnings.empty()) {
            wakeups_.warnings = std::move(line);
            return;
        }
        try {
            wakeups_.warnings.append(1, '\0').append(line);
        } catch (...) {  // no memory to keep it: the task's record still says it runs again
        }
    }
    /// With the mutex held: unlock() says a task lost its wait-time thresholds.
    void defer_thresholds_lost() noexcept {
        deferred_ = true;
        ++wakeups_.thresholds_lost;
    }

    /// Without the mutex: hands `task` to the mutex's holders. False when
    /// the inbox is closed (the supervisor is stopped).
    [[nodiscard]] bool push(TaskBase* task) noexcept {
        if (!inbox_.push(task)) return false;
        full_fence();  // a holder letting go sees this push, or this sees the hungry_ it stored
        if (hungry_.load(std::memory_order_relaxed) && mutex_.try_lock()) {  // queue it now
            drain_inbox();
            unlock();
        }
        return true;
    }
    /// With the mutex held: queues what the inbox holds, oldest first.
    void drain_inbox() noexcept {
        if (TaskBase* oldest = inbox_.take(); oldest != nullptr) host_.queue_from_inbox(oldest);
    }
    /// With the mutex held: puts fail (stop) or go through again (start).
    /// close() returns what the inbox held, oldest first.
    [[nodiscard]] TaskBase* close_inbox() noexcept { return inbox_.close(); }
    void open_inbox() noexcept { inbox_.open(); }

private:
    /// With `run_left`, by a thread that leaves steps itself (run_locked()),
    /// never inside a wait on a condition variable: runs the steps left
    /// before it releases the mutex. Any other holder hands them back to
    /// their threads once it has released it: a step may notify a
    /// condition_variable_any, whose wait() holds its own mutex while it
    /// releases this one.
    void unlock(bool run_left) noexcept {
        for (int pass = 0;; ++pass) {
            DelegatedStep* ran = run_left ? left_.run_all() : nullptr;
            const bool hungry = host_.hungry();
            if (hungry != hungry_.load(std::memory_order_relaxed)) hungry_.store(hungry, std::memory_order_relaxed);
            if (deferred_) {
                deferred_ = false;
                const Wakeups wakeups = std::exchange(wakeups_, Wakeups{});
                mutex_.unlock();
                DelegatedSteps::done(ran);
                wakeups.send();
            } else {
                mutex_.unlock();
                DelegatedSteps::done(ran);
            }
            // A putter sees the hungry_ stored above, or this sees its push;
            // a thread leaving a step sees the mutex free, or this sees the step.
            full_fence();
            if (!left_.empty()) {
                if (run_left && pass == 0) {  // left while this thread held the mutex: once more
                    if (!mutex_.try_lock()) return;  // the holder sees them
                    drain_inbox();
                    continue;
                }
                left_.hand_back();  // each to its own thread, which takes the mutex for it
            }
            if (!hungry || inbox_.empty() || !mutex_.try_lock()) return;
            drain_inbox();
        }
    }

    alignas(64) Inbox inbox_;               // written by every push
    DelegatedSteps left_;                   // steps left to the holder (its own line)
    alignas(64) std::atomic<bool> hungry_{true};  // read by every push, written when it changes
    alignas(64) std::mutex mutex_;
    bool deferred_ = false;
    Wakeups wakeups_;  // what unlock() sends, decided under the mutex
    Host& host_;
};

}  // namespace atasker::detail
