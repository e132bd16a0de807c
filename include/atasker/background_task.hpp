#pragma once
/// \file background_task.hpp
/// background_task(fn, options): wraps any callable into something that, when
/// called with arguments, puts one task and returns its Task<R> handle.
///
///     auto t = at::background_task([](int x) { return x * 2; }, at::Priority::high)(21);
///     t.get();   // 42
///
/// A task function may take a `std::stop_token` first (it is asked to stop
/// when the task is canceled while running) and/or an `at::Progress&` (whose
/// reports show in TaskInfo::progress), before its own arguments.

#include <type_traits>
#include <utility>

#include <atasker/detail/task_impl.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task.hpp>
#include <atasker/task_options.hpp>

namespace atasker {

/// The callable background_task() returns. Copyable; each call puts a new task.
template <class F, class Cb = detail::NoCallback>
class BackgroundTask {
public:
    BackgroundTask(F fn, TaskOptions options, Cb callback = {})
        : fn_(std::move(fn)), options_(std::move(options)), callback_(std::move(callback)) {}

    /// The same task with a completion callback: `cb(const Task<R>&)` runs
    /// once, on the thread that finished the task (or canceled it), after the
    /// outcome is stored; `task.get()` inside it returns or rethrows at once.
    /// Exceptions it throws are logged.
    template <class C>
    [[nodiscard]] BackgroundTask<F, std::decay_t<C>> callback(C&& cb) const {
        return {fn_, options_, std::forward<C>(cb)};
    }

    /// Puts one task with these arguments (decayed copies, like std::thread).
    /// \throws Error when the supervisor is not started.
    template <class... Args>
    auto operator()(Args&&... args) const {
        using Shape = detail::CallShape<F, std::decay_t<Args>...>;
        static_assert(Shape::valid,
                      "atasker::background_task: the task function cannot be called with these arguments "
                      "(optionally preceded by std::stop_token and/or at::Progress&)");
        using R = typename Shape::result;
        using Impl = detail::TaskImpl<R, F, Cb, std::decay_t<Args>...>;
        TaskSupervisor* sup = options_.supervisor != nullptr ? options_.supervisor : &TaskSupervisor::instance();
        auto* impl = new Impl(fn_, callback_, std::forward<Args>(args)...);
        impl->supervisor = sup;
        Task<R> handle(impl, sup);
        impl->release();  // the handle holds it now
        sup->put_task(impl, options_);
        return handle;
    }

private:
    F fn_;
    TaskOptions options_;
    [[no_unique_address]] Cb callback_;
};

/// Wraps `fn` (any callable) with task options.
template <class F>
[[nodiscard]] BackgroundTask<std::decay_t<F>> background_task(F&& fn, TaskOptions options = {}) {
    return {std::forward<F>(fn), std::move(options)};
}

/// Wraps `fn` with a priority (atasker's `background_task(fn, priority=...)`).
template <class F>
[[nodiscard]] BackgroundTask<std::decay_t<F>> background_task(F&& fn, Priority priority) {
    TaskOptions options;
    options.priority = priority;
    return {std::forward<F>(fn), std::move(options)};
}

}  // namespace atasker
