#pragma once
// ProcessCall: one process task's call on one worker slot (or a chunk of
// at::map, or a task with the riders queued behind it), in the steps
// every carrier takes (a process-lane thread that waits, a fiber loop that
// does not): the slot is claimed by the lane; send(); receive() until the
// answer is in; then either the call never reached a worker (it died or was
// killed before taking it), and the call may be carried again on a fresh
// worker, or store() leaves the outcome in the task.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <vector>

#include <atasker/detail/mp_call.hpp>

#include "process/worker_processes.hpp"

namespace atasker::detail {

class ProcessCall {
public:
    /// How often a call that never reached a worker is carried again, on a
    /// fresh worker, before the task fails.
    static constexpr int max_carries = 3;

    ProcessCall() = default;
    ProcessCall(const ProcessCall&) = delete;
    ProcessCall& operator=(const ProcessCall&) = delete;

    /// Prepares `call` for `slot` of `workers` (which must outlive the call).
    void prepare(WorkerProcesses& workers, std::size_t slot, const MpCall& call) noexcept;
    /// Prepares several tasks' calls (each a lone task's, without a run
    /// timeout) carried in one request and run in turn by the worker; each
    /// task gets its own outcome. Without memory for the requests every
    /// task fails.
    void prepare_riders(WorkerProcesses& workers, std::size_t slot, std::span<const MpCall> calls) noexcept;

    enum class Sent {
        sent,      ///< on its way; receive() the answer
        no_worker, ///< none runs on the slot: nothing was sent, it may be carried again
        failed,    ///< the arguments could not be sent (not encodable, or no segment could be made
                   ///< for them in /dev/shm): stored in the task (a chunk or riders: in the
                   ///< first unsent item, and pending() tells what is left)
    };
    /// Sends the call (a chunk: the items without an outcome); the worker
    /// rings doorbell `bell` (or no_bell) when it answers, with `claimable`
    /// only if nobody claimed the answer first (WorkerProcesses::claim_answer).
    /// A call with a run
    /// timeout is timed from here.
    Sent send(std::uint32_t bell, bool claimable = false) noexcept;
    /// Consumes what arrived; with `block`, waits for the rest. True once
    /// the outcome is in (false only without `block`).
    bool receive(bool block) noexcept;
    /// True when an answer waits for receive() (does not block).
    [[nodiscard]] bool answered() const noexcept { return workers_->response_waiting(slot_); }
    /// The last send reached no worker (it died or was killed before taking
    /// anything): the call may be carried again.
    [[nodiscard]] bool never_reached() const noexcept;
    /// Items (of a chunk, or riders) left to send after the last receive():
    /// those after an item whose worker died, or that did not fit behind
    /// the others. Always false for a single call.
    [[nodiscard]] bool pending() const noexcept { return next_ < batch_.size(); }
    /// Stores the outcome in the task: its result was decoded by receive();
    /// a failure becomes the task's error (a chunk or riders: of each item left).
    /// `carries`: how often it was sent without reaching a worker.
    void store(int carries) noexcept;
    /// Fails what has no outcome yet with `error` (the worker could not be
    /// started or replaced): the task, or each item left.
    void fail_rest(const std::exception_ptr& error) noexcept;
    /// The number of tasks whose calls it carries (1 unless riders).
    [[nodiscard]] std::size_t tasks() const noexcept { return mode_ == Mode::riders ? riders_.size() : 1; }
    /// The progress the worker last reported for it (outside (0, 1]: none).
    [[nodiscard]] double progress() const noexcept { return workers_->progress(slot_); }

    [[nodiscard]] std::size_t slot() const noexcept { return slot_; }
    [[nodiscard]] const MpCall& call() const noexcept { return call_; }

private:
    // FunctionRef refers: the encoders live here, as long as the requests.
    struct Write {
        const MpCall* call;
        std::size_t item;
        void operator()(ByteWriter& out) const { call->write_args(call->context, item, out); }
    };
    struct Read {
        const MpCall* call;
        std::size_t item;
        bool alone;  // a single call: a decoding error is the flight's, not the item's
        void operator()(ByteReader& in) const;
    };
    struct Item {
        Write write;
        Read read;
    };
    enum class Mode : std::uint8_t { single, chunk, riders };
    [[nodiscard]] bool is_chunk() const noexcept { return mode_ == Mode::chunk; }
    /// Items of a chunk or of riders, each with its own outcome.
    [[nodiscard]] bool itemized() const noexcept { return mode_ != Mode::single; }
    [[nodiscard]] std::span<CallRequest> unsent() noexcept;
    /// A request per item of items_ (which must not change while they are
    /// sent: they refer to its encoders). \throws std::bad_alloc.
    void make_requests();
    /// A chunk's outcomes after receive(): fails the items that failed and
    /// moves next_ past every item with an outcome.
    void absorb() noexcept;
    void fail_item(std::size_t item, std::exception_ptr error, TaskStatus status = TaskStatus::failed) noexcept;
    /// The call item `i` belongs to.
    [[nodiscard]] const MpCall& call_of(std::size_t i) const noexcept {
        return mode_ == Mode::riders ? riders_[i] : call_;
    }

    WorkerProcesses* workers_ = nullptr;
    std::size_t slot_ = 0;
    MpCall call_{};  // riders: the first's
    Mode mode_ = Mode::single;
    Write write_{&call_, 0};
    Read read_{&call_, 0, true};
    CallRequest request_{.task_index = 0, .write_args = write_, .read_result = read_};
    // A chunk's or riders': a request per item, and the first without an outcome.
    std::vector<MpCall> riders_;
    std::vector<Item> items_;
    std::vector<CallRequest> batch_;
    std::size_t next_ = 0;
    bool advanced_ = false;  // the last receive() gave some item an outcome
    WorkerProcesses::Flight flight_{};
};

/// What the task's caller should see for a failed outcome (RemoteError,
/// TimeoutError, CanceledError, Error); null for ok. Made without throwing:
/// fiber loops run calls on fiber stacks, where AddressSanitizer cannot
/// follow an unwind (it leaves stale redzones behind and reports them later).
[[nodiscard]] std::exception_ptr failure_of(const CallOutcome& o, const MpCall& call);

}  // namespace atasker::detail
