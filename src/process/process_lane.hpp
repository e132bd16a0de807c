#pragma once
// MpPool: the process pool's worker processes, one bound to each thread of
// the supervisor's process-pool ThreadPool. That thread carries its tasks to
// its worker and waits for the answer, so admission, idling and retiring are
// the thread pool's, unchanged. At most one MpPool exists at a time.

#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <vector>

#include <atasker/detail/mp_call.hpp>

#include "process/worker_processes.hpp"

namespace atasker::detail {

class MpPool {
public:
    /// Takes over the zygote (calling at::init() first if nobody did) and
    /// checks the MpTask registry. \throws Error on duplicate task names, or
    /// when another process pool runs.
    MpPool();
    /// Ends and reaps every worker. The zygote stays for the next pool.
    ~MpPool();
    MpPool(const MpPool&) = delete;
    MpPool& operator=(const MpPool&) = delete;

    /// Worker slots reserved by at::init(): the most workers the pool can hold.
    [[nodiscard]] std::size_t slot_count() const noexcept { return workers_->slot_count(); }

    /// Binds a free slot to the calling pool thread and starts its worker.
    /// \returns the slot, or -1 when none is free.
    int attach_thread() noexcept;
    /// Ends the calling thread's worker and frees its slot.
    void detach_thread() noexcept;

    [[nodiscard]] WorkerProcesses& workers() noexcept { return *workers_; }

private:
    std::optional<WorkerProcesses> workers_;  // ends before the zygote
    std::mutex mutex_;
    std::vector<std::size_t> free_slots_;
};

/// The call never reached a worker (it died or was killed before taking
/// it): it may be carried again, on a fresh worker.
[[nodiscard]] bool never_reached(const CallOutcome& o) noexcept;
/// What the task's caller should see for a failed outcome (RemoteError,
/// TimeoutError, CanceledError, Error); null for ok. Made without throwing:
/// the direct path runs on fiber stacks, where AddressSanitizer cannot follow
/// an unwind (it leaves stale redzones behind and reports them later).
[[nodiscard]] std::exception_ptr failure_of(const CallOutcome& o, const MpCall& call);
/// How a task whose call ended in failure_of(o) ended: canceled for the
/// outcomes failure_of makes a CanceledError of, failed otherwise.
[[nodiscard]] TaskStatus failure_status(const CallOutcome& o) noexcept;

}  // namespace atasker::detail
