#pragma once
/// \file task.hpp
/// Task<R>: the handle background_task() returns. Copies share one task;
/// dropping every handle never cancels it (the supervisor owns it until it ends).

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <atasker/detail/task_awaiter.hpp>
#include <atasker/detail/task_base.hpp>
#include <atasker/error.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task_info.hpp>

namespace atasker {

namespace detail {

/// The outcome half of a task: where its result lives once it ran.
template <class R>
class ResultTask : public TaskBase {
public:
    using result_type = R;
    std::optional<R> value;
};
template <>
class ResultTask<void> : public TaskBase {
public:
    using result_type = void;
};

}  // namespace detail

template <class R>
class Task;

namespace detail {
/// The task behind a valid handle: what the library's composition
/// (when_any, groups, awaiting) watches.
template <class R>
[[nodiscard]] TaskBase& base_of(const Task<R>& task) noexcept;
}  // namespace detail

/// A handle on one task whose function returns R. Thread-safe. A handle may
/// outlive its supervisor: get(), status() and error() keep working, info()
/// is then empty and cancel() false.
template <class R>
class Task {
public:
    using result_type = R;  ///< what the task function returns

    /// An empty handle (valid() is false) to assign a real one to later.
    Task() noexcept = default;
    /// Shares `task` (adds a reference).
    Task(detail::ResultTask<R>* task, TaskSupervisor* supervisor) noexcept : ref_(task), supervisor_(supervisor) {
        if (task != nullptr) task->add_ref();
    }
    struct Adopt {};
    /// Takes over one reference the caller owns.
    Task(Adopt, detail::ResultTask<R>* task, TaskSupervisor* supervisor) noexcept
        : ref_(task), supervisor_(supervisor) {}

    /// False for a default-constructed handle.
    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(ref_); }
    /// The task's id, the key of get_task_info() and cancel_task(); never 0.
    /// Needs a valid() handle, as do all the members below.
    [[nodiscard]] TaskId id() const noexcept { return ref_->id; }
    /// The supervisor's record; empty once the record was forgotten (see
    /// RetentionOptions) or the supervisor was destroyed.
    [[nodiscard]] std::optional<TaskInfo> info() const { return supervisor_.task_info(id()); }
    /// The task's status; exact even after its record was forgotten.
    [[nodiscard]] TaskStatus status() const {
        if (!ref_->is_done()) {
            auto i = info();
            return i ? i->status : TaskStatus::started;
        }
        return ref_->end_status();
    }
    /// See TaskSupervisor::cancel_task(); false once the supervisor was destroyed.
    bool cancel() const { return supervisor_.cancel_task(id()); }

    /// True once the task finished (completed, failed or canceled).
    [[nodiscard]] bool ready() const noexcept { return ref_->is_done(); }
    /// Waits until the task finished (completed, failed or canceled). A
    /// process task whose put sent its call (see the guide, "Process
    /// tasks") is ended by the waiting thread itself, which reads the answer.
    void wait() const noexcept {
        if (!ref_->is_done() && ref_->waiter_may_run()) (void)supervisor_.run_waited(*ref_.get());
        ref_->wait();
    }
    /// Waits up to `timeout`; true when the task finished.
    template <class Rep, class Period>
    [[nodiscard]] bool wait_for(std::chrono::duration<Rep, Period> timeout) const noexcept {
        return ref_->wait_until(std::chrono::steady_clock::now() +
                                std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
    }
    /// Waits until `deadline`; true when the task finished.
    template <class Clock, class Duration>
    [[nodiscard]] bool wait_until(std::chrono::time_point<Clock, Duration> deadline) const noexcept {
        return wait_for(deadline - Clock::now());
    }

    /// Waits, then returns the result or rethrows the task's exception
    /// (CanceledError when it was canceled). The reference lives as long as
    /// any handle on the task.
    decltype(auto) get() const& {
        wait();
        if (ref_->error()) rethrow();
        if constexpr (!std::is_void_v<R>) return static_cast<const R&>(*result().value);
    }
    /// As get(), returning a copy (the handle is going away).
    R get() && {
        wait();
        if (ref_->error()) rethrow();
        if constexpr (!std::is_void_v<R>) return *result().value;
    }
    /// The task's exception once it failed or was canceled; empty otherwise.
    /// A failure read here, or rethrown by get(), counts as received: it is
    /// logged at debug level only (see the guide, "Errors and logging").
    [[nodiscard]] std::exception_ptr error() const noexcept {
        if (!ref_->is_done() || !ref_->error()) return nullptr;
        ref_->mark_error_received();
        return ref_->error();
    }

    /// `co_await task` from any C++20 coroutine: the result (a reference
    /// into the task, as get() gives) or the task's exception. A task that
    /// has ended is not waited for. Otherwise the coroutine is resumed on the
    /// thread that ends the task (a pool thread, or the one that canceled
    /// it), inline, before that thread goes on: keep what follows short, or
    /// use resume_on() to go on elsewhere. \throws Error for an empty handle.
    [[nodiscard]] detail::TaskAwaiter<const Task&> operator co_await() const& {
        check_awaitable();
        return detail::TaskAwaiter<const Task&>(*this);
    }
    /// As above for a handle going away (`co_await background_task(f)()`):
    /// the result is a copy.
    [[nodiscard]] detail::TaskAwaiter<Task> operator co_await() && {
        check_awaitable();
        return detail::TaskAwaiter<Task>(std::move(*this));
    }

private:
    friend detail::TaskBase& detail::base_of<R>(const Task<R>& task) noexcept;
    [[noreturn]] void rethrow() const {
        ref_->mark_error_received();
        std::rethrow_exception(ref_->error());
    }
    void check_awaitable() const {
        if (!valid()) throw Error("co_await on an empty Task handle; assign it a task from background_task() first");
    }
    [[nodiscard]] detail::ResultTask<R>& result() const noexcept {
        return *static_cast<detail::ResultTask<R>*>(ref_.get());
    }

    detail::TaskRef ref_;
    detail::SupervisorLink supervisor_;
};

namespace detail {
// Inside the namespace rather than qualified: Doxygen, which leaves detail
// out, then does not look for it among the documented members.
template <class R>
TaskBase& base_of(const Task<R>& task) noexcept {
    return *task.ref_.get();
}
}  // namespace detail

/// Waits for one task and returns its result, or rethrows its exception as
/// it is (its own type: with one task, there is no doubt which failed).
/// Thread-safe.
template <class R>
R wait_completed(const Task<R>& task) {
    return Task<R>(task).get();
}

/// Waits for several tasks, all within `timeout`, and returns their results
/// in order (nothing for void tasks). Thread-safe.
/// \throws TimeoutError naming how many did not finish in time.
/// \throws TaskFailedError when one failed or was canceled: the first such
/// in the list. Its what() names the task ("task 12 'parse' (thread) failed:
/// bad input 7"), index() is its position, and the task's own exception is
/// nested, with its own type (`std::rethrow_if_nested(e)` rethrows it). Its
/// name and id are what tell a failure among many apart; a run timeout
/// (TimeoutError) is also told apart from the wait's own.
template <class R, class Rep, class Period>
auto wait_completed(const std::vector<Task<R>>& tasks, std::chrono::duration<Rep, Period> timeout) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
    std::size_t unfinished = 0;
    for (const auto& t : tasks)
        if (!t.wait_until(deadline)) ++unfinished;
    if (unfinished != 0)
        throw TimeoutError(fmt::format("{} of {} tasks did not finish within {}", unfinished, tasks.size(),
                                       std::chrono::duration_cast<std::chrono::milliseconds>(timeout)));
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        if (tasks[i].error()) {
            const auto info = tasks[i].info();
            detail::throw_task_failed(detail::base_of(tasks[i]), info ? info->name : std::string{}, i);
        }
    }
    if constexpr (!std::is_void_v<R>) {
        std::vector<R> out;
        out.reserve(tasks.size());
        for (const auto& t : tasks) out.push_back(t.get());
        return out;
    }
}

}  // namespace atasker
