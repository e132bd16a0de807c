#pragma once
// Timers: one thread and a deadline heap shared by every timed thing in a
// supervisor (delays, wait-time warnings, interval workers, call_at). The
// thread sleeps until the earliest deadline or until an earlier one is added;
// with nothing scheduled it sleeps indefinitely, using no CPU.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace atasker::detail {

class Timers {
public:
    using Clock = std::chrono::steady_clock;
    /// Called on the timer thread, outside the timers' lock; must not throw.
    using Callback = void (*)(void* context, std::uint64_t argument) noexcept;

    Timers() = default;
    Timers(const Timers&) = delete;
    Timers& operator=(const Timers&) = delete;
    ~Timers();

    /// Calls callback(context, argument) at `when` (or soon after); `callback`
    /// is not null. Starts the timer thread on first use. Returns an id for
    /// cancel(), or 0 when the timers are stopped (nothing is scheduled then).
    /// \throws SystemError when the timer thread cannot start.
    std::uint64_t schedule(Clock::time_point when, Callback callback, void* context, std::uint64_t argument);
    /// As above, for a function the entry owns: it is called once at `when`
    /// and then destroyed, or destroyed uncalled by cancel() or stop(), always
    /// without the timers' lock. What it throws is logged at LogLevel::error
    /// as "scheduled call ID threw: ...". Returns 0, dropping `fn`, when the
    /// timers are stopped.
    std::uint64_t schedule(Clock::time_point when, std::function<void()> fn);
    /// Drops a scheduled call that has not started; false when it already ran
    /// (or is running) or was dropped. A call running now finishes first:
    /// after cancel() returns, the callback is not running for that id (and
    /// an owned function is destroyed), unless cancel() is called from it.
    bool cancel(std::uint64_t id);
    /// As cancel(), without waiting for a call running now: callable under a
    /// lock that callback takes. A callback that may run after its entry
    /// was dropped tells by running().
    bool drop(std::uint64_t id) noexcept;
    /// On the timer thread, inside a callback: the id its entry had; 0
    /// anywhere else.
    [[nodiscard]] std::uint64_t running() const noexcept;
    /// Starts the timer thread unless it runs, so that a later schedule()
    /// can fail only for want of memory; nothing when the timers are stopped.
    /// \throws SystemError when the timer thread cannot start.
    void start();
    /// Ends the thread; pending entries are dropped (owned functions
    /// destroyed uncalled), and schedule() drops new ones until resume().
    void stop();
    void resume();
    [[nodiscard]] std::size_t pending() const;

private:
    struct Entry {
        Clock::time_point when;
        std::uint64_t sequence;  // FIFO among equal deadlines; the id
        Callback callback;       // null: functions_ holds what to call
        void* context;
        std::uint64_t argument;
        bool operator>(const Entry& o) const noexcept {
            return when != o.when ? when > o.when : sequence > o.sequence;
        }
    };
    // Owned functions live beside the heap, not in its entries: a heap entry
    // is copied as it moves, and most entries (delays, thresholds) own none.
    using Functions = std::unordered_map<std::uint64_t, std::function<void()>>;

    std::uint64_t push_locked(Clock::time_point when, Callback callback, void* context, std::uint64_t argument);
    void loop();

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
    std::uint64_t sequence_ = 0;
    std::unordered_set<std::uint64_t> pending_;   // ids in the heap, not canceled
    std::unordered_set<std::uint64_t> canceled_;  // ids in the heap, dropped
    Functions functions_;                          // by id: pending owned functions
    std::uint64_t running_ = 0;            // id of the callback running now (0: none)
    std::condition_variable ran_;          // cancel() waits here for a running callback
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace atasker::detail
