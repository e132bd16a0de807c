#pragma once
/// \file detail/task_impl.hpp
/// TaskImpl: a thread task's function, arguments, result and callback in one
/// allocation, and how the function is called (with an optional stop token
/// and progress reporter in front of the user's arguments).

#include <functional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

#include <atasker/error.hpp>
#include <atasker/log.hpp>
#include <atasker/progress.hpp>
#include <atasker/task.hpp>

namespace atasker::detail {

struct NoCallback {};

/// A completion callback that only fulfils a promise, cheap and never
/// blocking, so any thread may run it: its type says
/// `static constexpr bool fulfils_only = true;`.
template <class Cb>
concept PromiseOnlyCallback = requires { requires Cb::fulfils_only; };

/// How a function of type F is called with arguments Args: what leads.
template <class F, class... Args>
struct CallShape {
    static constexpr bool token_progress = std::is_invocable_v<F&, std::stop_token, Progress&, Args...>;
    static constexpr bool token = !token_progress && std::is_invocable_v<F&, std::stop_token, Args...>;
    static constexpr bool progress = !token_progress && !token && std::is_invocable_v<F&, Progress&, Args...>;
    static constexpr bool plain = std::is_invocable_v<F&, Args...>;
    static constexpr bool valid = token_progress || token || progress || plain;
    static constexpr bool wants_token = token_progress || token;

    static auto result_of() {
        if constexpr (token_progress) {
            return std::type_identity<std::invoke_result_t<F&, std::stop_token, Progress&, Args...>>{};
        } else if constexpr (token) {
            return std::type_identity<std::invoke_result_t<F&, std::stop_token, Args...>>{};
        } else if constexpr (progress) {
            return std::type_identity<std::invoke_result_t<F&, Progress&, Args...>>{};
        } else if constexpr (plain) {
            return std::type_identity<std::invoke_result_t<F&, Args...>>{};
        } else {
            return std::type_identity<void>{};
        }
    }
    using result = std::remove_cvref_t<typename decltype(result_of())::type>;
};

/// Runs a completion callback with a handle on the finished task; logs
/// what it throws.
template <class R, class Cb, class Supervisor>
void run_completion_callback(Cb& callback, ResultTask<R>* task, Supervisor supervisor) noexcept {
    if constexpr (!std::is_same_v<Cb, NoCallback>) {
        if (task->error()) task->mark_error_received();  // the callback is where it goes
        try {
            callback(Task<R>(task, supervisor));
        } catch (const std::exception& e) {
            log(LogLevel::error, "completion callback of task {} threw: {}", task->id, e.what());
        } catch (...) {
            log(LogLevel::error, "completion callback of task {} threw a non-standard exception", task->id);
        }
    }
}

template <class R, class F, class Cb, class... Args>
class TaskImpl final : public ResultTask<R> {
    using Shape = CallShape<F, Args...>;

public:
    template <class FF, class CC, class... AA>
    TaskImpl(FF&& fn, CC&& callback, AA&&... args)
        : fn_(std::forward<FF>(fn)), callback_(std::forward<CC>(callback)), args_(std::forward<AA>(args)...) {}

    void run(const RunContext& context) noexcept override {
        try {
            if constexpr (std::is_void_v<R>) {
                call(context.progress);
            } else {
                this->value.emplace(call(context.progress));
            }
        } catch (const CanceledError&) {
            // A function gives up with CanceledError (a stop token's usual
            // answer): the task was canceled, not failed.
            this->set_error(std::current_exception(), TaskStatus::canceled);
        } catch (...) {
            this->set_error(std::current_exception());
        }
    }

    bool request_stop() noexcept override {
        if constexpr (Shape::wants_token) {
            return stop_.request_stop() || stop_.stop_requested();
        } else {
            return false;
        }
    }

    void run_callback() noexcept override { run_completion_callback<R>(callback_, this, supervisor_); }

    void prepare_retry() noexcept override {
        if constexpr (Shape::wants_token) {
            if (!stop_.stop_requested()) return;
            try {
                stop_ = std::stop_source{};
            } catch (...) {  // no memory for a fresh one: the next run starts asked to stop
            }
        }
    }

    /// The handle a completion callback receives needs the supervisor; a
    /// task without a callback does not keep it.
    void set_supervisor(TaskSupervisor* s) noexcept {
        if constexpr (!std::is_same_v<Cb, NoCallback>) supervisor_ = s;
    }

private:
    decltype(auto) call(const Progress& progress) {
        Progress p = progress;
        return std::apply(
            [&](auto&... a) -> decltype(auto) {
                if constexpr (Shape::token_progress) {
                    return std::invoke(fn_, stop_.get_token(), p, std::move(a)...);
                } else if constexpr (Shape::token) {
                    return std::invoke(fn_, stop_.get_token(), std::move(a)...);
                } else if constexpr (Shape::progress) {
                    return std::invoke(fn_, p, std::move(a)...);
                } else {
                    return std::invoke(fn_, std::move(a)...);
                }
            },
            args_);
    }

    struct NoStop {};
    [[no_unique_address]] F fn_;  // a lambda that captures nothing takes no room
    struct NoSupervisor {};  // not NoStop: two members of one empty type cannot share an address
    [[no_unique_address]] std::conditional_t<std::is_same_v<Cb, NoCallback>, NoSupervisor, TaskSupervisor*> supervisor_{};
    [[no_unique_address]] Cb callback_;
    [[no_unique_address]] std::tuple<Args...> args_;  // empty for no arguments
    [[no_unique_address]] std::conditional_t<Shape::wants_token, std::stop_source, NoStop> stop_;
};

}  // namespace atasker::detail
