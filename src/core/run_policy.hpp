#pragma once
// RunPolicy: what a task put with retries or a thread deadline carries
// beside its record (TaskTable side storage), read and written under the
// supervisor's mutex. How the supervisor uses it: run_policy.cpp.

#include <chrono>
#include <cstdint>

namespace atasker::detail {

struct RunPolicy {
    unsigned retries_left = 0;                 // runs still allowed after a failure
    unsigned failed = 0;                       // failed runs that were retried
    std::chrono::nanoseconds next_delay{0};    // the next retry's wait (doubles)
    std::chrono::nanoseconds timeout{0};       // a thread task's limit per run (0: none)
    std::uint64_t deadline_timer = 0;          // the running run's deadline timer (0: none)
    bool timed_out = false;       // the running run passed its deadline
    bool cancel_asked = false;    // cancel() asked the running run to stop: no retry
    bool stop_in_flight = false;  // the deadline's stop request is being made, without the mutex
    bool retry_waiting = false;   // a retry waits for that request to be made

    /// The longest wait: far from overflowing a steady_clock time point.
    static constexpr std::chrono::nanoseconds longest{std::chrono::nanoseconds::max().count() / 4};
    /// The wait after `d`: twice as long, up to `longest`.
    [[nodiscard]] static std::chrono::nanoseconds doubled(std::chrono::nanoseconds d) noexcept {
        return d > longest / 2 ? longest : d * 2;
    }
};

}  // namespace atasker::detail
