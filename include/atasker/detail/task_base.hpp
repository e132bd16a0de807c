#pragma once
/// \file detail/task_base.hpp
/// The one allocation behind every task: queue link, reference count,
/// completion state and error. Typed subclasses add function, arguments and
/// result. Supervisor internals and Task<R> handles share it.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>

#include <atasker/export.hpp>
#include <atasker/priority.hpp>
#include <atasker/progress.hpp>

namespace atasker::detail {

class ATASKER_API TaskBase {
public:
    TaskBase() noexcept = default;
    TaskBase(const TaskBase&) = delete;
    TaskBase& operator=(const TaskBase&) = delete;
    virtual ~TaskBase();

    /// Runs the function on this thread and stores its result or exception.
    virtual void run(const Progress& progress) noexcept = 0;
    /// Asks a running task to stop; false when its function takes no stop token.
    virtual bool request_stop() noexcept { return false; }
    /// Runs the completion callback, if any (after the outcome is stored).
    virtual void run_callback() noexcept {}
    /// Progress read from where the task runs (a worker process); negative
    /// when the task's record already holds it.
    [[nodiscard]] virtual float live_progress() const noexcept { return -1.0F; }

    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    /// Before the task is shared with anyone: start with `n` references
    /// (a handle's and the supervisor's), sparing two atomic updates.
    void preset_refs(std::uint32_t n) noexcept { refs_.store(n, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    /// Stores `error` as the outcome (used for cancellation and lost workers).
    void set_error(std::exception_ptr error) noexcept { error_ = std::move(error); }
    [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }

    /// Marks the outcome visible to waiters and wakes them. Called once.
    void mark_done() noexcept;
    [[nodiscard]] bool is_done() const noexcept { return (state_.load(std::memory_order_acquire) & done_bit) != 0; }
    /// Blocks until mark_done(); the timed form returns false on timeout.
    void wait() const noexcept;
    [[nodiscard]] bool wait_until(std::chrono::steady_clock::time_point deadline) const noexcept;

    [[nodiscard]] Priority priority() const noexcept { return priority_of_rank(rank); }

    // Laid out to keep a task's header at 40 bytes.
    TaskBase* next = nullptr;  ///< queue link, owned by the admission queue
    TaskId id = 0;

protected:
    std::exception_ptr error_;

private:
    static constexpr std::uint8_t done_bit = 1;
    static constexpr std::uint8_t waiters_bit = 2;
    std::atomic<std::uint32_t> refs_{1};
    mutable std::atomic<std::uint8_t> state_{0};

public:
    std::uint8_t rank = 2;              ///< priority_rank() of the task's priority
    TaskType type = TaskType::thread;
};

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

}  // namespace atasker::detail
