#pragma once
/// \file detail/task_base.hpp
/// The one allocation behind every task: queue link, reference count,
/// completion state and error. Typed subclasses add function, arguments and
/// result. Supervisor internals and Task<R> handles share it.

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>

#include <atasker/export.hpp>
#include <atasker/priority.hpp>
#include <atasker/progress.hpp>

namespace atasker::detail {

class CallCarrier;
class TaskBase;

/// Something told when a task ends, registered after the task was put
/// (TaskBase::watch): what when_any, as_completed, task groups and
/// coroutines wait with. A task costs nothing extra for it until watched.
class ATASKER_API TaskWatcher {
public:
    /// Called once, when the watched task ends: on the thread that ended it,
    /// after its outcome is visible to every reader (is_done()), with no
    /// lock of the library held. It must not throw; it may destroy the
    /// watcher, and may wait for or watch other tasks.
    virtual void task_ended() noexcept = 0;

protected:
    TaskWatcher() noexcept = default;
    TaskWatcher(const TaskWatcher&) noexcept {}  // a copy is not registered
    TaskWatcher& operator=(const TaskWatcher&) noexcept { return *this; }
    ~TaskWatcher() = default;

private:
    friend class TaskBase;
    const TaskBase* task_ = nullptr;  // while registered
    TaskWatcher* next_ = nullptr;     // in its bucket's list
};

/// What a lane hands the task it runs: where progress reports go and, for a
/// process task, what carries its call to a worker process.
struct RunContext {
    Progress progress;
    CallCarrier* carrier = nullptr;
};

class ATASKER_API TaskBase {
public:
    TaskBase() noexcept : next(nullptr) {}
    TaskBase(const TaskBase&) = delete;
    TaskBase& operator=(const TaskBase&) = delete;
    virtual ~TaskBase();
    /// Tasks are allocated on one thread and freed on another, millions a
    /// second: they come from a scalable allocator (src/task_memory.cpp).
    static void* operator new(std::size_t size);
    static void operator delete(void* p) noexcept;

    /// Runs the function on this thread and stores its result or exception
    /// (a process task hands its call to `context.carrier`).
    virtual void run(const RunContext& context) noexcept = 0;
    /// Asks a running task to stop; false when its function takes no stop token.
    virtual bool request_stop() noexcept { return false; }
    /// Runs the completion callback, if any (after the outcome is stored).
    virtual void run_callback() noexcept {}
    /// Before a retry runs the task again, nothing running it: a stop
    /// requested of the failed run is not left for the next one.
    virtual void prepare_retry() noexcept {}

    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    /// Before the task is shared with anyone: start with `n` references
    /// (a handle's and the supervisor's), sparing two atomic updates.
    void preset_refs(std::uint32_t n) noexcept { refs_.store(n, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    /// Stores `error` as the outcome and `status` (failed or canceled) as how
    /// the task ended. Whoever catches or makes the error says which it is, so
    /// no reader has to rethrow it to find out. Never while the task is queued.
    void set_error(std::exception_ptr error, TaskStatus status = TaskStatus::failed) noexcept {
        assert(error && (status == TaskStatus::failed || status == TaskStatus::canceled));
        if (has_error()) {
            error_ = std::move(error);
        } else {
            std::construct_at(&error_, std::move(error));
        }
        end_status_ = status;
    }
    /// Forgets a failed run's outcome, so that the task can be queued and
    /// run again (a retry). Never while anyone may read the outcome.
    void clear_error() noexcept {
        if (!has_error()) return;
        std::destroy_at(&error_);
        std::construct_at(&next, nullptr);
        end_status_ = TaskStatus::completed;
    }
    [[nodiscard]] const std::exception_ptr& error() const noexcept { return has_error() ? error_ : no_error_; }
    /// How the task ended: completed, or the status set_error() stored.
    /// Meaningful once the outcome is stored (on the running thread after
    /// run(), elsewhere after is_done()).
    [[nodiscard]] TaskStatus end_status() const noexcept { return end_status_; }

    /// Marks the outcome visible to waiters and wakes them. Called once.
    void mark_done() noexcept;
    [[nodiscard]] bool is_done() const noexcept { return (state_.load(std::memory_order_acquire) & done_bit) != 0; }
    /// Blocks until mark_done(); the timed form returns false on timeout.
    void wait() const noexcept;
    [[nodiscard]] bool wait_until(std::chrono::steady_clock::time_point deadline) const noexcept;
    /// Registers `w` to be told when this task ends. False when it has
    /// already ended: `w` is then not registered and will not be called.
    /// A watcher watches one task at a time.
    [[nodiscard]] bool watch(TaskWatcher& w) const noexcept;
    /// Takes `w` back. True: it will not be called. False: it has been
    /// called, or is being called on another thread, so it must stay alive
    /// until task_ended() (which is how its owner learns the call is over).
    [[nodiscard]] bool unwatch(TaskWatcher& w) const noexcept;

    /// The task's error reached someone: a handle's get() or error(), its
    /// completion callback, a task group. Cheap once marked; thread-safe.
    void mark_error_received() const noexcept {
        if ((state_.load(std::memory_order_relaxed) & received_bit) == 0) note_received();
    }
    /// Logs `line`, the failure of this task, once it ended and its callback
    /// ran, the caller holding a reference: at debug level when the error was
    /// received or a handle left may still receive it, at error level when
    /// no handle is left. A failure whose last handle goes without receiving
    /// it is logged at error level then (by the destructor).
    void report_failure(const std::string& line) noexcept;

    [[nodiscard]] Priority priority() const noexcept { return priority_of_rank(rank); }

    /// Whether any thread may end this task, a fiber loop's included: its
    /// completion only fulfils a promise, and nothing must watch it while it
    /// runs (no run timeout). Set before the task is put.
    [[nodiscard]] bool ends_anywhere() const noexcept {
        return (state_.load(std::memory_order_relaxed) & ends_anywhere_bit) != 0;
    }
    void set_ends_anywhere() noexcept { state_.fetch_or(ends_anywhere_bit, std::memory_order_relaxed); }
    /// Whether the task may ride with others: be carried in one request
    /// with the tasks queued beside it, to a worker that runs them in turn
    /// (a process task with no run timeout). Set before the task is put.
    [[nodiscard]] bool may_ride() const noexcept { return (state_.load(std::memory_order_relaxed) & rides_bit) != 0; }
    void set_may_ride() noexcept { state_.fetch_or(rides_bit, std::memory_order_relaxed); }
    /// Whether the thread that waits for this task may end it itself (the
    /// process lane: read the answer of the call its put started): ending it
    /// runs none of the user's code (no completion callback, or one that
    /// only fulfils a promise), and nothing must watch it while it runs (no
    /// run timeout), so any thread may end it. Set before the task is put.
    [[nodiscard]] bool waiter_may_run() const noexcept {
        return (state_.load(std::memory_order_relaxed) & waiter_runs_bit) != 0;
    }
    void set_waiter_may_run() noexcept { state_.fetch_or(waiter_runs_bit, std::memory_order_relaxed); }

    // Laid out to keep a task's header at 40 bytes. One word has two lives:
    // the queue link while the task waits in an admission queue, then its
    // error (see set_error); a task with an outcome is never queued again.
    union {
        TaskBase* next;  ///< queue link, owned by the admission queue
        std::exception_ptr error_;  ///< constructed by set_error() only
    };
    TaskId id = 0;
    /// The put's wall time (ns since the epoch) while the task waits in the
    /// supervisor's inbox; the thread that queues it copies it to its record.
    /// In the task, which the putting thread has just written, not in the
    /// record, which another CPU last wrote: with 4 submitters on 2 vCPUs,
    /// 1.10× the tasks per second (docs/design.md, "The put path").
    std::int64_t put_time = 0;

private:
    static inline const std::exception_ptr no_error_{};
    static constexpr std::uint8_t done_bit = 1;
    static constexpr std::uint8_t waiters_bit = 2;
    static constexpr std::uint8_t ends_anywhere_bit = 4;
    static constexpr std::uint8_t received_bit = 8;     // see mark_error_received()
    static constexpr std::uint8_t unreceived_bit = 16;  // a failure's line waits for the last release
    static constexpr std::uint8_t rides_bit = 32;
    static constexpr std::uint8_t waiter_runs_bit = 64;
    void note_received() const noexcept;
    std::atomic<std::uint32_t> refs_{1};
    mutable std::atomic<std::uint8_t> state_{0};

public:
    std::uint8_t rank = 2;              ///< priority_rank() of the task's priority
    TaskType type = TaskType::thread;

private:
    [[nodiscard]] bool has_error() const noexcept { return end_status_ != TaskStatus::completed; }
    TaskStatus end_status_ = TaskStatus::completed;  ///< not completed: error_ is constructed
};
static_assert(sizeof(TaskBase) == 40 || sizeof(void*) != 8, "a task's header is 40 bytes on 64-bit targets");

/// Owns one reference; the smart pointer used by handles and the supervisor.
class TaskRef {
public:
    TaskRef() noexcept = default;
    explicit TaskRef(TaskBase* p) noexcept : p_(p) {}  // adopts one reference
    TaskRef(const TaskRef& o) noexcept : p_(o.p_) {
        if (p_) p_->add_ref();
    }
    TaskRef(TaskRef&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    TaskRef& operator=(TaskRef o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~TaskRef() {
        if (p_) p_->release();
    }
    [[nodiscard]] TaskBase* get() const noexcept { return p_; }
    TaskBase* operator->() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    TaskBase* p_ = nullptr;
};

/// The message of an exception, for records and logs.
[[nodiscard]] ATASKER_API std::string describe(const std::exception_ptr& e);

/// Throws a TaskFailedError naming `task` (which failed or was canceled),
/// `name` and its `index` in a list, with the task's exception nested.
[[noreturn]] ATASKER_API void throw_task_failed(const TaskBase& task, std::string name, std::size_t index);

}  // namespace atasker::detail
