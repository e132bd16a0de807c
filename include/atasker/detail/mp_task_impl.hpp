#pragma once
/// \file detail/mp_task_impl.hpp
/// MpTaskImpl: a process task's arguments, result and callback in one
/// allocation; its run() carries the call to a worker process.

#include <chrono>
#include <tuple>
#include <type_traits>
#include <utility>

#include <atasker/detail/mp_call.hpp>
#include <atasker/detail/task_impl.hpp>
#include <atasker/mp_task.hpp>

namespace atasker::detail {

/// Refers to a registered MpTask (which lives at namespace scope).
template <class F>
struct MpTaskRef {
    using function_type = F;
    const MpTask<F>* task;
};

template <class F>
struct is_mp_task_ref : std::false_type {};
template <class F>
struct is_mp_task_ref<MpTaskRef<F>> : std::true_type {};

template <class F, class Cb, class... Args>
class MpTaskImpl final : public ResultTask<typename MpTask<F>::result_type> {
    using R = typename MpTask<F>::result_type;

public:
    template <class CC, class... AA>
    MpTaskImpl(const MpTask<F>& task, std::chrono::nanoseconds timeout, CC&& callback, AA&&... args)
        : task_(&task), timeout_(timeout), callback_(std::forward<CC>(callback)), args_(std::forward<AA>(args)...) {
        this->type = TaskType::mp;
        if (timeout.count() == 0) this->set_may_ride();
        if constexpr (PromiseOnlyCallback<Cb>) {
            if (timeout.count() == 0) this->set_ends_anywhere();
        }
        if constexpr (std::is_same_v<Cb, NoCallback> || PromiseOnlyCallback<Cb>) {
            if (timeout.count() == 0) this->set_waiter_may_run();
        }
    }

    void run(const RunContext& context) noexcept override { context.carrier->carry(call()); }
    void run_callback() noexcept override { run_completion_callback<R>(callback_, this, supervisor_); }

    /// The handle a completion callback receives needs the supervisor; a
    /// task without a callback does not keep it.
    void set_supervisor(TaskSupervisor* s) noexcept {
        if constexpr (!std::is_same_v<Cb, NoCallback>) supervisor_ = s;
    }

private:
    [[nodiscard]] MpCall call() noexcept {
        return MpCall{.task = this,
                      .task_index = task_->index(),
                      .context = this,
                      .write_args = &write_args,
                      .read_result = &read_result,
                      .timeout = timeout_};
    }
    static void write_args(void* self, std::size_t /*item*/, ByteWriter& out) {
        auto* me = static_cast<MpTaskImpl*>(self);
        std::apply([&](const auto&... a) { MpTask<F>::encode_args(out, a...); }, me->args_);
    }
    static void read_result(void* self, std::size_t /*item*/, ByteReader& in) {
        auto* me = static_cast<MpTaskImpl*>(self);
        if constexpr (std::is_void_v<R>) {
            MpTask<F>::decode_result(in);
        } else {
            me->value.emplace(MpTask<F>::decode_result(in));
        }
    }

    struct NoSupervisor {};
    const MpTask<F>* task_;
    [[no_unique_address]] std::conditional_t<std::is_same_v<Cb, NoCallback>, NoSupervisor, TaskSupervisor*> supervisor_{};
    std::chrono::nanoseconds timeout_;
    [[no_unique_address]] Cb callback_;
    [[no_unique_address]] std::tuple<Args...> args_;  // empty for no arguments
};

}  // namespace atasker::detail
