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
///
/// A failing task may run again (`{.retries = 3, .retry_delay = 100ms}`),
/// and a run may have a deadline (`{.timeout = 2s}`): a thread task is then
/// asked to stop through its stop token and ends as TimeoutError.
///
/// Given an `at::MpTask`, the task runs in a worker process of the process
/// pool (TaskSupervisor::set_mp_pool()):
///
///     inline const at::MpTask square{"square", [](int x) { return x * x; }};
///     at::background_task(square, at::Priority::high)(7).get();   // 49

#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include <atasker/detail/mp_task_impl.hpp>
#include <atasker/detail/task_impl.hpp>
#include <atasker/error.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task.hpp>
#include <atasker/task_options.hpp>

namespace atasker {

/// The callable background_task() returns. Copyable (when its callback is);
/// each call puts a new task.
template <class F, class Cb = detail::NoCallback>
class BackgroundTask {
public:
    /// Wraps `fn` with `options` and an optional completion callback; use
    /// background_task() rather than naming this type.
    BackgroundTask(F fn, TaskOptions options, Cb callback = {})
        : fn_(std::move(fn)), options_(std::move(options)), callback_(std::move(callback)) {}

    /// The same task with a completion callback: `cb(const Task<R>&)` runs
    /// once, on the thread that finished the task (or canceled it), after the
    /// outcome is stored; `task.get()` inside it returns or rethrows at once.
    /// Exceptions it throws are logged.
    template <class C>
    [[nodiscard]] BackgroundTask<F, std::decay_t<C>> callback(C&& cb) const& {
        return {fn_, options_, std::forward<C>(cb)};
    }
    /// As callback() above, moving this wrapper's function and options into
    /// the result instead of copying them.
    template <class C>
    [[nodiscard]] BackgroundTask<F, std::decay_t<C>> callback(C&& cb) && {
        return {std::move(fn_), std::move(options_), std::forward<C>(cb)};
    }

    /// Puts one task with these arguments (decayed copies, like std::thread).
    /// \throws Error when the supervisor is not started.
    template <class... Args>
    auto operator()(Args&&... args) const& {
        return put_new(callback_, std::forward<Args>(args)...);
    }
    /// The same, moving the callback into the task: the last call of a
    /// BackgroundTask whose callback is move-only (co_apply's promise).
    template <class... Args>
    auto operator()(Args&&... args) && {
        return put_new(std::move(callback_), std::forward<Args>(args)...);
    }

private:
    template <class C, class... Args>
    auto put_new(C&& cb, Args&&... args) const {
        TaskSupervisor* sup = options_.supervisor != nullptr ? options_.supervisor : &TaskSupervisor::instance();
        if constexpr (detail::is_mp_task_ref<F>::value) {
            using Impl = detail::MpTaskImpl<typename F::function_type, Cb, std::decay_t<Args>...>;
            if (options_.type == TaskType::thread)
                throw Error("an at::MpTask runs in a worker process, not on a thread; give it TaskType::mp or "
                            "TaskType::remote (or leave the type empty), or call its function() on a thread");
            auto* impl = new Impl(*fn_.task, options_.timeout, std::forward<C>(cb), std::forward<Args>(args)...);
            if (options_.type) impl->type = *options_.type;
            if (!options_.name.empty()) return put(sup, impl, options_);
            TaskOptions named = options_;  // a process task is named after its MpTask by default
            named.name = fn_.task->name();
            return put(sup, impl, named);
        } else {
            using Shape = detail::CallShape<F, std::decay_t<Args>...>;
            static_assert(Shape::valid,
                          "atasker::background_task: the task function cannot be called with these arguments "
                          "(optionally preceded by std::stop_token and/or at::Progress&)");
            using Impl = detail::TaskImpl<typename Shape::result, F, Cb, std::decay_t<Args>...>;
            if (options_.type && *options_.type != TaskType::thread)
                throw Error(fmt::format("a function cannot leave its process to run as a {} task; wrap it in an "
                                        "at::MpTask, or leave the type empty to run it on a thread",
                                        *options_.type));
            return put(sup, new Impl(fn_, std::forward<C>(cb), std::forward<Args>(args)...), options_);
        }
    }

    template <class Impl>
    static auto put(TaskSupervisor* sup, Impl* impl, const TaskOptions& options) {
        using R = typename std::remove_reference_t<decltype(*impl)>::result_type;
        impl->set_supervisor(sup);
        impl->preset_refs(2);  // one for the handle, one the supervisor takes over
        Task<R> handle(typename Task<R>::Adopt{}, impl, sup);
        sup->put_task(impl, options);
        return handle;
    }

    F fn_;
    TaskOptions options_;
    [[no_unique_address]] Cb callback_;
};

/// Wraps `fn` (any callable) with task options.
template <class F>
[[nodiscard]] BackgroundTask<std::decay_t<F>> background_task(F&& fn, TaskOptions options = {}) {
    return {std::forward<F>(fn), std::move(options)};
}

/// Wraps a process task: each call runs it in a worker process.
template <class F>
[[nodiscard]] BackgroundTask<detail::MpTaskRef<F>> background_task(const MpTask<F>& task, TaskOptions options = {}) {
    return {detail::MpTaskRef<F>{&task}, std::move(options)};
}

/// Wraps a process task with a priority.
template <class F>
[[nodiscard]] BackgroundTask<detail::MpTaskRef<F>> background_task(const MpTask<F>& task, Priority priority) {
    TaskOptions options;
    options.priority = priority;
    return {detail::MpTaskRef<F>{&task}, std::move(options)};
}

/// Wraps `fn` with a priority (atasker's `background_task(fn, priority=...)`).
template <class F>
[[nodiscard]] BackgroundTask<std::decay_t<F>> background_task(F&& fn, Priority priority) {
    TaskOptions options;
    options.priority = priority;
    return {std::forward<F>(fn), std::move(options)};
}

}  // namespace atasker
