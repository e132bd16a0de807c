#pragma once
// The two futex calls the pools sleep and wake with (Linux; private futexes
// unless a word lives in memory shared with other processes, see doorbell.hpp).
// A pool thread sleeps on a word of its own rather than on a shared condition
// variable: glibc's pthread_cond_signal may block until the thread signalled
// before has run, which on a VM takes tens of microseconds (waking an idle
// vCPU), all paid by the submitter. perf showed pthread_cond_signal waiting
// in futex_wait on the submitter's stack; in a build that woke pool threads
// often, rounds of atasker-bench section 1 fell from 2.2M to 0.1-0.3M tasks/s.

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace atasker::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

/// Who may wait on and wake a word: this process's threads only, or any
/// process that maps it (MAP_SHARED memory).
enum class FutexScope { process, shared };

/// Sleeps while `word` holds `expected`, at most `timeout` (none: no limit).
/// May return early (spuriously or on a signal): callers re-check.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       const std::chrono::nanoseconds* timeout = nullptr,
                       FutexScope scope = FutexScope::process) noexcept {
    timespec ts{};
    if (timeout != nullptr) {
        const auto ns = timeout->count() > 0 ? timeout->count() : 0;
        ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    const int op = scope == FutexScope::process ? FUTEX_WAIT_PRIVATE : FUTEX_WAIT;
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, expected,  // NOLINT
              timeout != nullptr ? &ts : nullptr, nullptr, 0);
}

/// Wakes the thread sleeping on `word`, if any.
inline void futex_wake(std::atomic<std::uint32_t>& word, FutexScope scope = FutexScope::process) noexcept {
    const int op = scope == FutexScope::process ? FUTEX_WAKE_PRIVATE : FUTEX_WAKE;
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, 1, nullptr, nullptr, 0);  // NOLINT
}

}  // namespace atasker::detail
