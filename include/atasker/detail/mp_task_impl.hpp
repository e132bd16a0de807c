#pragma once
/// \file detail/mp_task_impl.hpp
/// MpTaskImpl: a process task's arguments, result and callback in one
/// allocation; its run() carries the call to a worker process.

#include <atomic>
#include <chrono>
#include <tuple>
#include <type_traits>
#include <utility>

#include <atasker/detail/mp_call.hpp>
#include <atasker/detail/task_impl.hpp>
#include <atasker/error.hpp>
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

template <class R>
struct FiberPromiseCallback;
/// A callback that only fulfils a fiber promise (co_mp_apply's).
template <class Cb>
inline constexpr bool fiber_promise_callback = false;
template <class R>
inline constexpr bool fiber_promise_callback<FiberPromiseCallback<R>> = true;

template <class F, class Cb, class... Args>
class MpTaskImpl final : public ResultTask<typename MpTask<F>::result_type> {
    using R = typename MpTask<F>::result_type;

public:
    template <class CC, class... AA>
    MpTaskImpl(const MpTask<F>& task, std::chrono::nanoseconds timeout, CC&& callback, AA&&... args)
        : task_(&task), timeout_(timeout), callback_(std::forward<CC>(callback)), args_(std::forward<AA>(args)...) {
        this->type = TaskType::mp;
    }

    void run(const Progress& progress) noexcept override {
        try {
            run_mp_call(call(), progress);
        } catch (const CanceledError&) {
            // The call was canceled or its worker killed under it (failure_of).
            this->set_error(std::current_exception(), TaskStatus::canceled);
        } catch (...) {
            this->set_error(std::current_exception());
        }
    }
    bool fiber_mp_call(MpCall& out) noexcept override {
        if constexpr (!fiber_promise_callback<Cb>) {
            return false;
        } else {
            out = call();
            return true;
        }
    }
    bool request_stop() noexcept override { return cancel_mp_call(slot_.load(std::memory_order_acquire), this->id); }
    void run_callback() noexcept override { run_completion_callback<R>(callback_, this, supervisor_); }
    [[nodiscard]] float live_progress() const noexcept override {
        const int slot = slot_.load(std::memory_order_acquire);
        return slot < 0 ? -1.0F : mp_call_progress(slot);
    }

    /// The handle a completion callback receives needs the supervisor; a
    /// task without a callback does not keep it.
    void set_supervisor(TaskSupervisor* s) noexcept {
        if constexpr (!std::is_same_v<Cb, NoCallback>) supervisor_ = s;
    }

private:
    [[nodiscard]] MpCall call() noexcept {
        return MpCall{.id = this->id,
                      .task_index = task_->index(),
                      .context = this,
                      .write_args = &write_args,
                      .read_result = &read_result,
                      .timeout = timeout_,
                      .running_slot = &slot_};
    }
    static void write_args(void* self, ByteWriter& out) {
        auto* me = static_cast<MpTaskImpl*>(self);
        std::apply([&](const auto&... a) { MpTask<F>::encode_args(out, a...); }, me->args_);
    }
    static void read_result(void* self, ByteReader& in) {
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
    std::atomic<int> slot_{-1};
};

}  // namespace atasker::detail
