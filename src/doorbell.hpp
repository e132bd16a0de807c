#pragma once
// Doorbell: a futex word that a thread sleeps on and that anyone may ring:
// other threads of this process, and worker processes when the word lives in
// the shared mapping (SharedSlots::doorbell). A fiber loop sleeps on one, so
// a worker's answer wakes the thread that waits for it directly, with no pool
// thread in between. Futex calls here are not private: they work across
// processes on MAP_SHARED memory (and on private memory too).

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace atasker::detail {

struct alignas(64) Doorbell {
    std::atomic<std::uint32_t> rings{0};     ///< bumped by every ring
    std::atomic<std::uint32_t> sleeping{0};  ///< 1 while its owner sleeps (or is about to)
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

/// Wakes the doorbell's owner, or makes its next sleep return at once. The
/// caller publishes what it rings for before ringing.
inline void ring(Doorbell& bell) noexcept {
    bell.rings.fetch_add(1, std::memory_order_seq_cst);
    if (bell.sleeping.load(std::memory_order_seq_cst) != 0)
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&bell.rings), FUTEX_WAKE, 1, nullptr, nullptr, 0);  // NOLINT
}

/// The owner: sleeps unless the doorbell rang since `seen` (read with
/// bell.rings.load() before checking what the rings are for), at most until
/// `until` (steady clock; max() for no limit). May return early.
inline void sleep_on(Doorbell& bell, std::uint32_t seen, std::chrono::steady_clock::time_point until) noexcept {
    bell.sleeping.store(1, std::memory_order_seq_cst);
    if (bell.rings.load(std::memory_order_seq_cst) == seen) {
        timespec ts{};
        const bool timed = until != std::chrono::steady_clock::time_point::max();
        if (timed) {
            const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(until - std::chrono::steady_clock::now());
            const auto ns = left.count() > 0 ? left.count() : 0;
            ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
            ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        }
        if (!timed || ts.tv_sec > 0 || ts.tv_nsec > 0)
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&bell.rings), FUTEX_WAIT, seen,  // NOLINT
                      timed ? &ts : nullptr, nullptr, 0);
    }
    bell.sleeping.store(0, std::memory_order_relaxed);
}

}  // namespace atasker::detail
