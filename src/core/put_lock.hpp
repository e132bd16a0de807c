#pragma once
// PutLock: how a put that does not go to the inbox (supervisor_mutex.hpp)
// takes the supervisor's mutex. A put that finds the mutex
// held spins briefly before it sleeps, but only when no other put is in
// flight: the holder is then a pool thread ending one task and taking the
// next, which takes well under a microsecond, while sleeping costs the
// submitter a wake-up (tens of microseconds on a VM) and a lone submitter is
// what limits the rate. With other puts in flight it sleeps at once:
// spinning submitters starve the pool threads of the mutex. Measured with
// atasker-bench section 1 (2 vCPUs): 1 submitter 1.7-1.9M -> 2.4M tasks/s;
// every put spinning instead took 4 submitters from 4.3M to 3.0M tasks/s.

#include <atomic>
#include <mutex>

#include "sync/spin_pause.hpp"
#include "core/supervisor_mutex.hpp"

namespace atasker::detail {

class PutLock {
public:
    /// About 10 µs of pauses on x86.
    static constexpr int spin_limit = 200;

    /// Locks `mutex`; the put counts in `in_flight` until destroyed.
    PutLock(SupervisorMutex& mutex, std::atomic<int>& in_flight) noexcept
        : in_flight_(in_flight), lock_(mutex, std::defer_lock) {
        const bool alone = in_flight_.fetch_add(1, std::memory_order_relaxed) == 0;
        if (lock_.try_lock()) return;
        if (alone)
            for (int i = 0; i < spin_limit; ++i) {
                spin_pause();
                if (lock_.try_lock()) return;
            }
        lock_.lock();
    }
    ~PutLock() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
    PutLock(const PutLock&) = delete;
    PutLock& operator=(const PutLock&) = delete;

    [[nodiscard]] std::unique_lock<SupervisorMutex>& lock() noexcept { return lock_; }

private:
    std::atomic<int>& in_flight_;
    std::unique_lock<SupervisorMutex> lock_;
};

}  // namespace atasker::detail
