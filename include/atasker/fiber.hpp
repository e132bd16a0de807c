#pragma once
/// \file fiber.hpp
/// co_apply() and co_mp_apply(): put a task and get a boost::fibers::future
/// for its result, so a Boost.Fiber fiber can await it. Waiting suspends only
/// that fiber; its thread runs the others meanwhile.
///
///     boost::fibers::future<int> f = at::co_mp_apply(square, std::tuple{7}, {.priority = at::Priority::high});
///     int r = f.get();   // 49
///
/// The promise is owned by the task's completion side (its callback), never
/// by the waiting fiber's frame: the task may finish on any thread at any time.

#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>

#include <boost/fiber/future.hpp>

#include <atasker/background_task.hpp>
#include <atasker/mp_task.hpp>

namespace atasker {

namespace detail {

/// A completion callback that fulfils a fiber promise with the task's
/// outcome. Move-only: the task holds the promise itself.
template <class R>
struct FiberPromiseCallback {
    static constexpr bool fulfils_only = true;  // see PromiseOnlyCallback
    boost::fibers::promise<R> promise;

    void operator()(const Task<R>& task) {
        try {
            if constexpr (std::is_void_v<R>) {
                task.get();
                promise.set_value();
            } else {
                promise.set_value(task.get());
            }
        } catch (...) {
            promise.set_exception(std::current_exception());
        }
    }
};

template <class R, class Wrapped, class Tuple>
boost::fibers::future<R> put_for_fiber(Wrapped&& wrapped, Tuple&& args) {
    FiberPromiseCallback<R> callback;
    auto future = callback.promise.get_future();
    auto with_callback = std::forward<Wrapped>(wrapped).callback(std::move(callback));
    std::apply([&](auto&&... a) { (void)std::move(with_callback)(std::forward<decltype(a)>(a)...); },
               std::forward<Tuple>(args));
    return future;
}

}  // namespace detail

/// Puts `fn(args...)` as a thread task and returns a fiber future for its
/// result (or exception). \throws Error when the task cannot be put.
template <class F, class Tuple = std::tuple<>>
auto co_apply(F&& fn, Tuple&& args = {}, TaskOptions options = {}) {
    using Shape = std::remove_cvref_t<decltype(std::apply(
        [](auto&&... a) { return detail::CallShape<std::decay_t<F>, std::decay_t<decltype(a)>...>{}; },
        std::declval<Tuple&>()))>;
    using R = typename Shape::result;
    return detail::put_for_fiber<R>(background_task(std::forward<F>(fn), std::move(options)),
                                    std::forward<Tuple>(args));
}

/// Puts `task(args...)` as a process task and returns a fiber future for its
/// result (or exception, e.g. RemoteError). \throws Error when the task
/// cannot be put (no process pool, supervisor stopped).
template <class F, class Tuple = std::tuple<>>
auto co_mp_apply(const MpTask<F>& task, Tuple&& args = {}, TaskOptions options = {}) {
    using R = typename MpTask<F>::result_type;
    return detail::put_for_fiber<R>(background_task(task, std::move(options)), std::forward<Tuple>(args));
}

}  // namespace atasker
