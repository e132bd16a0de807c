#pragma once
/// \file fiber.hpp
/// co_apply() and co_mp_apply(): put a task and get a boost::fibers::future
/// for its result, so a Boost.Fiber fiber can await it. Waiting suspends only
/// that fiber; its thread runs the others meanwhile.
///
///     boost::fibers::future<int> f = at::co_mp_apply(square, 7);
///     int r = f.get();   // 49
///     auto g = at::co_apply(add, {.priority = at::Priority::high}, 2, 3);   // options before the arguments
///     auto h = at::co_apply(add, std::tuple{2, 3}, {.priority = at::Priority::high});   // the tuple form
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

template <class T>
struct is_tuple : std::false_type {};
template <class... T>
struct is_tuple<std::tuple<T...>> : std::true_type {};

/// What co_apply()'s tuple form takes: a std::tuple of the arguments.
template <class T>
concept ArgumentTuple = is_tuple<std::remove_cvref_t<T>>::value;

/// Which form a call of co_apply() / co_mp_apply() is: options first, the
/// tuple form (one tuple, optionally followed by options) or a plain list.
template <class... Args>
struct ArgumentForm {
    static constexpr bool list = true;  // no arguments
};
template <class First, class... Rest>
struct ArgumentForm<First, Rest...> {
    static constexpr bool options_first = std::is_same_v<std::remove_cvref_t<First>, TaskOptions>;
    static constexpr bool tuple_form =
        ArgumentTuple<First> &&
        (sizeof...(Rest) == 0 ||
         (sizeof...(Rest) == 1 && (std::is_same_v<std::remove_cvref_t<Rest>, TaskOptions> && ...)));
    static constexpr bool list = !options_first && !tuple_form;
};

/// Arguments that co_apply(fn, args...) passes on one by one.
template <class... Args>
concept ArgumentList = ArgumentForm<Args...>::list;

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
/// result (or exception), like `background_task(fn)(args...)`. Arguments are
/// copied (decayed) into the task.
///
/// The tuple form below is chosen instead when the arguments are exactly one
/// std::tuple, optionally followed by TaskOptions; to pass a tuple as a task
/// function's only argument, give options first: `co_apply(fn, {}, tuple)`.
/// \throws Error when the task cannot be put. Thread-safe.
template <class F, class... Args>
    requires detail::ArgumentList<Args...>
auto co_apply(F&& fn, Args&&... args) {
    return co_apply(std::forward<F>(fn), TaskOptions{}, std::forward<Args>(args)...);
}

/// As co_apply(fn, args...), with TaskOptions (`{.priority = Priority::high}`)
/// before the arguments; everything after the options is an argument, a
/// tuple included. \throws Error when the task cannot be put. Thread-safe.
template <class F, class... Args>
auto co_apply(F&& fn, TaskOptions options, Args&&... args) {
    using R = typename detail::CallShape<std::decay_t<F>, std::decay_t<Args>...>::result;
    return detail::put_for_fiber<R>(background_task(std::forward<F>(fn), std::move(options)),
                                    std::forward_as_tuple(std::forward<Args>(args)...));
}

/// The tuple form: puts `fn(a, b...)` for `args` = `std::tuple{a, b...}`, with
/// optional TaskOptions after it. \throws Error when the task cannot be put.
/// Thread-safe.
template <class F, detail::ArgumentTuple Tuple>
auto co_apply(F&& fn, Tuple&& args, TaskOptions options = {}) {
    using Shape = std::remove_cvref_t<decltype(std::apply(
        [](auto&&... a) { return detail::CallShape<std::decay_t<F>, std::decay_t<decltype(a)>...>{}; },
        std::declval<Tuple&>()))>;
    using R = typename Shape::result;
    return detail::put_for_fiber<R>(background_task(std::forward<F>(fn), std::move(options)),
                                    std::forward<Tuple>(args));
}

/// Puts `task(args...)` as a process task and returns a fiber future for its
/// result (or exception, e.g. RemoteError). The arguments are chosen as for
/// co_apply(): exactly one std::tuple (optionally followed by TaskOptions) is
/// the tuple form. \throws Error when the task cannot be put (no process
/// pool, supervisor stopped). Thread-safe.
template <class F, class... Args>
    requires detail::ArgumentList<Args...>
auto co_mp_apply(const MpTask<F>& task, Args&&... args) {
    return co_mp_apply(task, TaskOptions{}, std::forward<Args>(args)...);
}

/// As co_mp_apply(task, args...), with TaskOptions before the arguments.
/// \throws Error when the task cannot be put. Thread-safe.
template <class F, class... Args>
auto co_mp_apply(const MpTask<F>& task, TaskOptions options, Args&&... args) {
    using R = typename MpTask<F>::result_type;
    return detail::put_for_fiber<R>(background_task(task, std::move(options)),
                                    std::forward_as_tuple(std::forward<Args>(args)...));
}

/// The tuple form of co_mp_apply(): `args` = `std::tuple{a, b...}`, with
/// optional TaskOptions after it. \throws Error when the task cannot be put.
/// Thread-safe.
template <class F, detail::ArgumentTuple Tuple>
auto co_mp_apply(const MpTask<F>& task, Tuple&& args, TaskOptions options = {}) {
    using R = typename MpTask<F>::result_type;
    return detail::put_for_fiber<R>(background_task(task, std::move(options)), std::forward<Tuple>(args));
}

}  // namespace atasker
