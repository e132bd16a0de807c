#pragma once
// PutCalls: process calls that the thread putting the task sends itself.
// When a thread that is neither one of the process lane's nor a fiber loop
// puts a process task that ends quietly (TaskBase::waiter_may_run) while a
// place and an idle worker are free, it sends the call at once
// (ProcessLane::start_here) instead of waking a lane thread for it: on a VM,
// waking a thread on another CPU costs about as much as the whole call.
//
// The answer goes to whoever claims it first (AnswerClaim, shm_slots.hpp):
// a thread that then waits for the task (Task::wait, through
// ProcessLane::start_waited) claims it and reads the answer itself, so the
// round trip has the two wake-ups of a bare semaphore ping-pong; an answer
// that nobody claimed rings this collector's doorbell, and its thread ends
// the task as a lane thread would. Either way ProcessLane::end_here() (or
// carry_again(), for a call that never reached its worker) ends it.
//
// Per slot, under the supervisor's mutex: open while a call of ours is sent
// and its answer not taken; the waiter or the collector takes it, once the
// putting thread is done sending it (sent, set without the mutex: the
// worker may answer before send() has returned). An answer already there
// when the putting thread is done is taken by that thread.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "core/supervisor_mutex.hpp"
#include "process/process_call.hpp"
#include "process/process_lane.hpp"
#include "sync/doorbell.hpp"

namespace atasker::detail {

class PutCalls final : public InlineCarrier {
public:
    /// For the worker slots of `lane`; claims a doorbell in the shared
    /// mapping and starts the collector's thread. \throws Error when every
    /// doorbell is taken; std::system_error when the thread cannot start.
    PutCalls(ProcessLane& lane, SupervisorMutex& mutex, WorkerProcesses& workers);
    /// Every call must have ended. Stops the collector's thread.
    ~PutCalls();
    PutCalls(const PutCalls&) = delete;
    PutCalls& operator=(const PutCalls&) = delete;

    // InlineCarrier, on the putting thread, without the mutex
    [[nodiscard]] bool open() const noexcept override { return true; }
    /// Sends `call` on `slot` (opened); a call that cannot be sent ends at once.
    void start(ProcessLane& lane, WorkerProcesses& workers, std::size_t slot, const MpCall& call) noexcept override;

    // Under the mutex
    /// A call of ours is about to be sent on `slot`, whose worker is idle.
    void opened(std::size_t slot) noexcept;
    /// A waiting thread takes the answer of the call on `slot`; true when it
    /// got it, and must then end() it.
    [[nodiscard]] bool take_for_waiter(std::size_t slot) noexcept;

    // Without the mutex
    /// Reads the answer of the call on `slot` (taken) and ends its task.
    void end(std::size_t slot) noexcept;

private:
    /// Under the mutex: takes the answer of the call on `slot` if it is
    /// sent, posted and not yet taken; true when taken (end() it).
    [[nodiscard]] bool take_posted(std::size_t slot) noexcept;
    /// The collector's thread: ends the calls whose answers rang the doorbell.
    void collect() noexcept;

    ProcessLane& lane_;
    SupervisorMutex& mutex_;
    WorkerProcesses& workers_;
    std::uint32_t bell_index_ = no_bell;
    Doorbell* bell_ = nullptr;
    std::vector<std::unique_ptr<ProcessCall>> calls_;  // one per slot, reused
    std::vector<char> open_;                           // per slot, under the mutex
    std::unique_ptr<std::atomic<bool>[]> sent_;        // per slot
    bool quit_ = false;                                // under the mutex
    std::thread collector_;
};

}  // namespace atasker::detail
