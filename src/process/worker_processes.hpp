#pragma once
// The parent's side of the process pool: worker processes on slots, calls
// into them (one task or a batch per wake-up), kills, progress, death
// detection. No admission or priority logic: the supervisor decides what
// runs where; this class only runs it.

#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <atasker/detail/bytes.hpp>
#include <atasker/export.hpp>

#include "process/shm_slots.hpp"
#include "process/value_segment.hpp"

namespace atasker::detail {

class SharedSlots;
class Zygote;

/// A non-owning reference to a callable, for callbacks that do not outlive
/// the call they are passed to (no allocation).
template <class Signature>
class FunctionRef;
template <class R, class... Args>
class FunctionRef<R(Args...)> {
public:
    template <class F>
        requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, Args...>)
    FunctionRef(F&& f) noexcept  // NOLINT(google-explicit-constructor): implicit by design
        : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
          call_([](void* o, Args... a) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(a)...); }) {}
    R operator()(Args... a) const { return call_(object_, std::forward<Args>(a)...); }

private:
    void* object_;
    R (*call_)(void*, Args...);
};

/// How one process task ended.
struct CallOutcome {
    enum class Kind {
        ok,            ///< the task returned; its result was decoded by read_result
        remote_error,  ///< the task threw: error_type / error_message
        died,          ///< the worker process died (signal, abort, exit): error_type "signal" or "exit"
        timed_out,     ///< the deadline passed; the worker was killed
        killed,        ///< kill() or cancel() killed the worker while this task ran
        canceled,      ///< cancel() withdrew the task before it started; it never ran
        not_run,       ///< the batch ended before this task started (an earlier task's worker died,
                       ///< or its arguments did not fit this batch): run it again elsewhere
    };
    Kind kind = Kind::not_run;
    std::string error_type;     ///< remote_error: the exception's type; died: "signal" or "exit"
    std::string error_message;  ///< remote_error: what(); died: "worker process killed by signal 11 (SIGSEGV)"
    int signal_or_exit = 0;     ///< died/killed/timed_out: the signal number or exit code, when known
    bool started = false;       ///< the worker had taken the task when the outcome was decided
};

/// One task of a batch: what to run, how to encode its arguments and decode
/// its result, and (filled by call_batch) how it ended.
struct CallRequest {
    std::uint32_t task_index = 0;
    FunctionRef<void(ByteWriter&)> write_args;
    FunctionRef<void(ByteReader&)> read_result;
    std::uint64_t tag = 0;  ///< the caller's name for it, for cancel()
    CallOutcome outcome{};
};

/// Worker processes on the slots of the mapping at::init() made, forked by
/// its zygote. At most one WorkerProcesses exists at a time.
///
/// Threads: one reaper thread (started by the constructor, joined by stop())
/// waits in epoll on the workers' pidfds and the zygote's socket; it takes no
/// CPU while nothing happens. Calls block the calling thread on the slot's
/// process-shared semaphore.
///
/// Thread safety: every member may be called from any thread. At most one
/// call()/call_batch() may be in flight per slot; spawn()/replace()/retire()
/// of slot k must not overlap a call on slot k.
class ATASKER_API WorkerProcesses {
public:
    struct Options {
        /// Called on the reaper thread each time a worker process ends,
        /// whatever the cause, with its slot and how it ended (kind died,
        /// killed or timed_out, with the cause). Must not block for long and
        /// must not call stop().
        std::function<void(std::size_t slot, const CallOutcome& how)> on_exit;
    };

    /// Takes over the zygote started by at::init().
    /// \throws Error when at::init() was not called or another WorkerProcesses exists.
    explicit WorkerProcesses(Options options = {});
    /// stop(), then releases the zygote for a later WorkerProcesses.
    ~WorkerProcesses();
    WorkerProcesses(const WorkerProcesses&) = delete;
    WorkerProcesses& operator=(const WorkerProcesses&) = delete;

    /// The number of slots (InitOptions::max_workers).
    [[nodiscard]] std::size_t slot_count() const noexcept;
    /// Bytes available to one request batch and to one result (InitOptions::slot_size).
    [[nodiscard]] std::size_t slot_capacity() const noexcept;

    /// Starts a worker process on each of `slots` (which must have none
    /// running) and returns once all run (~0.4 ms each, forked in parallel by
    /// the zygote). \throws std::system_error when a fork fails; Error when
    /// the zygote is gone or a slot is out of range or busy.
    void spawn(std::span<const std::size_t> slots);
    void spawn(std::size_t slot) { spawn(std::span<const std::size_t>(&slot, 1)); }
    /// Starts a new worker on a slot whose worker has ended (after a call
    /// returned died/killed/timed_out, or on_exit). Same as spawn(slot).
    void replace(std::size_t slot) { spawn(slot); }
    /// Ends the worker on `slot` (SIGKILL) and returns once it is reaped;
    /// nothing if none runs. For shrinking the pool; not while a call runs on it.
    void retire(std::size_t slot);

    /// How long a worker process lives, and what it runs first. Applies to
    /// workers started after set_lifetime(); the limits also to running ones.
    struct Lifetime {
        std::uint64_t max_tasks = 0;   ///< replace a worker after this many tasks (0: never)
        std::uint64_t max_memory = 0;  ///< replace a worker whose RSS passed this (0: never)
        std::uint32_t initializer = 0xffffffffU;  ///< MpInit index each worker runs first, or none
        std::string initializer_name;             ///< for the log
    };
    void set_lifetime(Lifetime lifetime);

    /// After a call on `slot` returned (by the slot's caller, who still
    /// holds it): true when its worker asked to be replaced (it reached
    /// max_tasks or passed max_memory); discard() or recycle() then replace
    /// it. Logs, once per worker, an initializer that failed. Costs one load
    /// when neither happened.
    [[nodiscard]] bool retiring(std::size_t slot) noexcept {
        if (slots_.slot(slot).control->flags.load(std::memory_order_relaxed) == 0) [[likely]] return false;
        return retiring_slow(slot);
    }
    /// Ends the worker on `slot` without waiting (SIGKILL), logging at debug
    /// level why it is replaced; running() is false from here, and the next
    /// spawn() on the slot waits for its end. Not while a call runs on it.
    void discard(std::size_t slot) noexcept;
    /// discard(), then a fresh worker on `slot` (spawn()). Throws what spawn() throws.
    void recycle(std::size_t slot) {
        discard(slot);
        spawn(slot);
    }

    /// True while a worker process runs on `slot` (false once its end is known).
    [[nodiscard]] bool running(std::size_t slot) const noexcept;
    /// The worker's pid (0 when none), for diagnostics.
    [[nodiscard]] pid_t pid(std::size_t slot) const noexcept;

    /// Runs one task on `slot` and blocks until the worker answers, dies, is
    /// killed, or `deadline` passes (then the worker is killed and the
    /// outcome is timed_out; the call returns once it is reaped).
    /// write_args fills the request; arguments too large for the slot are
    /// measured and written again into a shared-memory segment made for the
    /// call (write_args is called three times then). If it throws (an
    /// encoder's error, SystemError when the segment cannot be made),
    /// nothing is sent and the exception propagates.
    /// read_result decodes the result of an ok outcome; its exceptions
    /// propagate after the slot is ready for the next call. When no worker
    /// runs on `slot` (it died since running() said it did), the outcome is
    /// not_run and nothing was sent.
    CallOutcome call(std::size_t slot, std::uint32_t task_index, FunctionRef<void(ByteWriter&)> write_args,
                     FunctionRef<void(ByteReader&)> read_result,
                     std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

    /// Runs several tasks on `slot` with one wake-up of the worker (one at a
    /// time, in order) and fills each request's outcome. The deadline covers
    /// the whole batch (give one-task batches to tasks with a run timeout).
    /// Arguments that do not fit behind the earlier ones leave that request
    /// and the rest not_run (sent again, they come first); the first
    /// request's arguments, if too large for the slot, cross through a
    /// segment (as call()'s). When the worker dies, earlier tasks keep their
    /// results, the running one gets died/killed/timed_out and later ones
    /// not_run. Results larger than the space left are carried in further
    /// chunks, and one larger than slot_capacity() through a segment the
    /// worker makes and this side removes as it reads it (or, after a
    /// death, unread). When no worker runs on `slot`, every outcome is
    /// not_run and nothing was sent.
    void call_batch(std::size_t slot, std::span<CallRequest> batch,
                    std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

    /// call_batch() in two halves, for a caller that does not block on the
    /// answer (a fiber loop): begin_batch() sends the batch and returns; the
    /// worker (and the reaper, on its death) rings doorbell `bell` after each
    /// answer it posts; advance_batch() consumes what arrived and returns true
    /// once every outcome is filled (false, without blocking, when `block` is
    /// false and the rest is still due); a result that could not be decoded
    /// leaves its exception in Flight::decode_error (call_batch rethrows it).
    /// The batch must outlive the flight. begin_batch() returns nothing, and
    /// sends nothing, when no worker runs on `slot`; it throws what encoding
    /// a lone request throws.
    struct Flight {
        std::size_t count = 0;   ///< records sent
        std::size_t next = 0;    ///< first record without an outcome
        std::uint32_t taken = 0; ///< results of the current chunk already read
        std::size_t out = 0;     ///< their bytes
        bool timer = false;
        timespec until{};
        std::exception_ptr decode_error;  ///< the first read_result that threw
        SegmentOwner args_segment;        ///< the first record's arguments' segment, if they needed one
    };
    [[nodiscard]] std::optional<Flight> begin_batch(std::size_t slot, std::span<CallRequest> batch,
                                                    std::optional<std::chrono::steady_clock::time_point> deadline,
                                                    std::uint32_t bell, bool claimable);
    /// With `claimable`, the answer goes to whoever claims it first
    /// (AnswerClaim in shm_slots.hpp): claim_answer() true means the caller
    /// reads it through advance_batch() and the doorbell is not rung; once
    /// answer_posted() is true, the doorbell was rung and nobody can claim
    /// it. unclaimable() clears the slot's word before a claimable batch is
    /// begun, while no batch is in flight there, so that a word left by an
    /// earlier batch is not read as this one's.
    [[nodiscard]] bool claim_answer(std::size_t slot) noexcept;
    [[nodiscard]] bool answer_posted(std::size_t slot) const noexcept;
    void unclaimable(std::size_t slot) noexcept;
    bool advance_batch(std::size_t slot, std::span<CallRequest> batch, Flight& flight, bool block);
    /// True when an answer (or the news of a death) waits for advance_batch().
    [[nodiscard]] bool response_waiting(std::size_t slot) const noexcept;

    /// Kills the worker on `slot` (SIGKILL through its pidfd). A call in
    /// flight returns killed for its running task (not_run for later ones of
    /// a batch). Returns false when no worker runs there. Safe from any thread.
    bool kill(std::size_t slot) noexcept;
    /// Cancels the task tagged `tag` of the batch in flight on `slot`: if it
    /// has not started it is withdrawn (outcome canceled, the worker goes on
    /// with the rest); if it runs, the worker is killed (outcome killed, later
    /// tasks not_run); if it has finished, nothing happens. Returns true when
    /// it was withdrawn or killed.
    bool cancel(std::size_t slot, std::uint64_t tag) noexcept;

    /// The progress the task running on `slot` last reported (0.0 until it
    /// reports), and the index of that task in its batch.
    [[nodiscard]] double progress(std::size_t slot) const noexcept;
    [[nodiscard]] std::uint32_t progress_record(std::size_t slot) const noexcept;

    /// Kills every worker, waits until each is reaped, and joins the reaper
    /// thread. Leaves the zygote running for a later WorkerProcesses. Idempotent.
    void stop() noexcept;

private:
    struct Worker;
    bool retiring_slow(std::size_t slot) noexcept;
    void reaper_loop() noexcept;
    void on_pidfd(std::size_t k);
    void on_reply(const struct ZygoteReply& reply, int fd);
    void on_zygote_lost();
    void finish(std::size_t k, std::unique_lock<std::mutex>& lock);
    void read_result_segment(CallRequest& req, ByteReader& payload, std::size_t k, struct SlotControl& c);
    void remove_result_segments(std::size_t k, struct SlotControl& c) noexcept;
    [[nodiscard]] Worker& worker(std::size_t k) const;

    SharedSlots& slots_;
    Zygote& zygote_;
    Options options_;
    int epoll_ = -1;
    int wake_ = -1;  // eventfd: stop() wakes the reaper
    mutable std::mutex mutex_;  // guards every Worker's bookkeeping
    std::condition_variable changed_;  // a spawn answered or a worker ended
    std::unique_ptr<Worker[]> workers_;
    Lifetime lifetime_;
    bool zygote_lost_ = false;
    bool stopped_ = false;
    std::thread reaper_;
};

}  // namespace atasker::detail
