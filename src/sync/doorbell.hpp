#pragma once
// Doorbell: a futex word that a thread sleeps on and that anyone may ring:
// other threads of this process, and worker processes when the word lives in
// the shared mapping (SharedSlots::doorbell). A fiber loop sleeps on one, so
// a worker's answer wakes the thread that waits for it directly, with no pool
// thread in between. Futex calls here are not private: they work across
// processes on MAP_SHARED memory (and on private memory too).

#include <atomic>
#include <chrono>
#include <cstdint>

#include "sync/futex.hpp"

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
    if (bell.sleeping.load(std::memory_order_seq_cst) != 0) futex_wake(bell.rings, FutexScope::shared);
}

/// The owner: sleeps unless the doorbell rang since `seen` (read with
/// bell.rings.load() before checking what the rings are for), at most until
/// `until` (steady clock; max() for no limit). May return early.
inline void sleep_on(Doorbell& bell, std::uint32_t seen, std::chrono::steady_clock::time_point until) noexcept {
    bell.sleeping.store(1, std::memory_order_seq_cst);
    if (bell.rings.load(std::memory_order_seq_cst) == seen) {
        if (until == std::chrono::steady_clock::time_point::max()) {
            futex_wait(bell.rings, seen, nullptr, FutexScope::shared);
        } else if (const std::chrono::nanoseconds left = until - std::chrono::steady_clock::now(); left.count() > 0) {
            futex_wait(bell.rings, seen, &left, FutexScope::shared);
        }
    }
    bell.sleeping.store(0, std::memory_order_relaxed);
}

}  // namespace atasker::detail
