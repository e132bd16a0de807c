#pragma once
/// \file detail/task_awaiter.hpp
/// What `co_await task` and `co_await resume_on(task, scheduler)` suspend
/// on: TaskWatchers that resume the awaiting coroutine when the task ends.
/// A task nobody awaits pays nothing for them.

#include <coroutine>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include <atasker/detail/task_base.hpp>

namespace atasker {

template <class R>
class Task;

namespace detail {

template <class R>
[[nodiscard]] TaskBase& base_of(const Task<R>& task) noexcept;

/// The awaiter of `co_await task`. `Handle` is `const Task<R>&` when an
/// lvalue handle is awaited (the result is then a reference into the task,
/// as get() gives), `Task<R>` when an rvalue is (moved in; the result is a
/// copy). Resumes the coroutine inline, on the thread that ended the task.
template <class Handle>
class TaskAwaiter final : public TaskWatcher {
public:
    explicit TaskAwaiter(Handle task) noexcept : task_(static_cast<Handle&&>(task)) {}

    /// An ended task is not waited for: the coroutine goes on at once.
    [[nodiscard]] bool await_ready() const noexcept { return task_.ready(); }
    /// False (go on at once) when the task ended meanwhile. Touches nothing
    /// of this awaiter after watch(): the task may end, and the coroutine
    /// resume and destroy it, on another thread before watch() returns.
    bool await_suspend(std::coroutine_handle<> continuation) noexcept {
        continuation_ = continuation;
        return base_of(task_).watch(*this);
    }
    decltype(auto) await_resume() {
        if constexpr (std::is_reference_v<Handle>) {
            return task_.get();
        } else {
            return std::move(task_).get();
        }
    }

    void task_ended() noexcept override { continuation_.resume(); }

private:
    Handle task_;
    std::coroutine_handle<> continuation_;
};

/// The awaiter resume_on() returns: always resumes through `scheduler`, an
/// ended task included, so the code after the co_await runs where the
/// scheduler puts it.
template <class R, class Scheduler>
class ResumeOnAwaiter final : public TaskWatcher {
public:
    ResumeOnAwaiter(Task<R> task, Scheduler scheduler)
        : task_(std::move(task)), scheduler_(std::move(scheduler)) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }
    /// \throws what the scheduler throws when the task had already ended.
    void await_suspend(std::coroutine_handle<> continuation) {
        continuation_ = continuation;
        if (!base_of(task_).watch(*this)) hand_over();
    }
    /// \returns the task's result. \throws its exception, or what the
    /// scheduler threw when the task ended.
    R await_resume() {
        if (scheduler_error_) std::rethrow_exception(scheduler_error_);
        return std::move(task_).get();
    }

    void task_ended() noexcept override {
        try {
            hand_over();
        } catch (...) {
            // The scheduler took nothing: the coroutine goes on here and
            // throws what the scheduler threw.
            scheduler_error_ = std::current_exception();
            continuation_.resume();
        }
    }

private:
    void hand_over() {
        // Once the scheduler has the coroutine, it may resume it and destroy
        // this awaiter before returning: the call runs on copies.
        Scheduler scheduler = std::move(scheduler_);
        const std::coroutine_handle<> continuation = continuation_;
        std::invoke(scheduler, continuation);
    }

    Task<R> task_;
    Scheduler scheduler_;
    std::coroutine_handle<> continuation_;
    std::exception_ptr scheduler_error_;
};

}  // namespace detail
}  // namespace atasker
