#pragma once
// The two futex calls the pools sleep and wake with (Linux, private futexes).
// A pool thread sleeps on a word of its own rather than on a shared condition
// variable: glibc's pthread_cond_signal may block until the thread signalled
// before has run, which on a VM (tens of microseconds to wake an idle vCPU)
// cost a submitter feeding an idling pool up to 10x its throughput
// (atasker-bench section 1, perf: pthread_cond_signal in futex_wait).

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace atasker::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

/// Sleeps while `word` holds `expected`, at most `timeout` (none: no limit).
/// May return early (spuriously or on a signal): callers re-check.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       const std::chrono::nanoseconds* timeout = nullptr) noexcept {
    timespec ts{};
    if (timeout != nullptr) {
        const auto ns = timeout->count() > 0 ? timeout->count() : 0;
        ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,  // NOLINT
              timeout != nullptr ? &ts : nullptr, nullptr, 0);
}

/// Wakes the thread sleeping on `word`, if any.
inline void futex_wake(std::atomic<std::uint32_t>& word) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);  // NOLINT
}

}  // namespace atasker::detail
