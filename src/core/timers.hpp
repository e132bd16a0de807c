#pragma once
// Timers: one thread and a deadline heap shared by every timed thing in a
// supervisor (delays, wait-time warnings, interval workers). The thread
// sleeps until the earliest deadline or until an earlier one is added; with
// nothing scheduled it sleeps indefinitely, using no CPU.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <queue>
#include <thread>
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

    /// Calls callback(context, argument) at `when` (or soon after). Starts the
    /// timer thread on first use. Returns an id for cancel(), or 0 when the
    /// timers are stopped (nothing is scheduled then).
    std::uint64_t schedule(Clock::time_point when, Callback callback, void* context, std::uint64_t argument);
    /// Drops a scheduled call that has not started; false when it already ran
    /// (or is running) or was dropped. A call running now finishes first:
    /// after cancel() returns, the callback is not running for that id.
    bool cancel(std::uint64_t id);
    /// Ends the thread; pending entries are dropped, and schedule() drops
    /// new ones until resume().
    void stop();
    void resume();
    [[nodiscard]] std::size_t pending() const;

private:
    struct Entry {
        Clock::time_point when;
        std::uint64_t sequence;  // FIFO among equal deadlines
        Callback callback;
        void* context;
        std::uint64_t argument;
        bool operator>(const Entry& o) const noexcept {
            return when != o.when ? when > o.when : sequence > o.sequence;
        }
    };
    void loop();

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
    std::uint64_t sequence_ = 0;
    std::unordered_set<std::uint64_t> pending_;   // ids in the heap, not canceled
    std::unordered_set<std::uint64_t> canceled_;  // ids in the heap, dropped
    std::uint64_t running_ = 0;            // id of the callback running now (0: none)
    std::condition_variable ran_;          // cancel() waits here for a running callback
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace atasker::detail
