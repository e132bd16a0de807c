#pragma once
/// \file coroutine.hpp
/// Awaiting tasks from C++20 coroutines of any type: `co_await task`
/// (Task::operator co_await) and resume_on(), which says where the coroutine
/// goes on.
///
///     int r = co_await at::background_task(fn)(x);   // resumed on the thread that ended the task
///     int s = co_await at::resume_on(at::background_task(fn)(y),
///                                    [&io](std::coroutine_handle<> h) { boost::asio::post(io, h); });
///
/// Plain `co_await task` resumes the coroutine inline on the thread that
/// ends the task, usually a pool thread, which runs the coroutine up to its
/// next suspension before it takes its next task: a long continuation holds
/// that thread. resume_on() hands the coroutine to a scheduler of yours
/// instead (an event loop, a thread of your own).

#include <concepts>
#include <coroutine>
#include <type_traits>
#include <utility>

#include <atasker/detail/task_awaiter.hpp>
#include <atasker/error.hpp>
#include <atasker/task.hpp>

namespace atasker {

/// What resume_on() resumes the coroutine with: a callable `s(h)` that
/// arranges for `h.resume()` (or `h()`) to be called once, on a thread of
/// its choosing. One that takes a `std::function<void()>` qualifies, since a
/// coroutine handle is callable. A scheduler that throws must not have taken
/// the handle.
template <class S>
concept CoroutineScheduler = std::invocable<S&, std::coroutine_handle<>>;

/// An awaitable for `task` that resumes the awaiting coroutine through
/// `scheduler`: `co_await resume_on(task, scheduler)` gives the result or
/// throws the task's exception, always on the scheduler's side, an ended
/// task included (then the scheduler is called at once, from the awaiting
/// thread). If the scheduler throws, the coroutine goes on where the task
/// ended (or where it awaited) and the co_await throws that exception.
/// \throws Error for an empty handle. Thread-safe; each awaitable is awaited
/// once.
template <class R, class Scheduler>
[[nodiscard]] auto resume_on(Task<R> task, Scheduler&& scheduler) {
    static_assert(CoroutineScheduler<std::decay_t<Scheduler>>,
                  "atasker::resume_on: the scheduler must be callable as scheduler(std::coroutine_handle<>) and "
                  "resume the handle once; e.g. [&io](std::coroutine_handle<> h) { boost::asio::post(io, h); }");
    if (!task.valid()) throw Error("resume_on() got an empty Task handle; give it a task from background_task()");
    return detail::ResumeOnAwaiter<R, std::decay_t<Scheduler>>(std::move(task), std::forward<Scheduler>(scheduler));
}

}  // namespace atasker
