#pragma once
// WaitHook: how a thread that must not block waits for a task. A fiber
// loop's thread runs many fibers; Task::get() blocking it would stall them
// all, so a higher layer (fiber/fiber_wait.*) installs a hook on such a
// thread and TaskBase::wait() / wait_until() let it suspend only the calling
// fiber. Where no hook is installed, waiting blocks the thread as usual; the
// plain path pays one thread-local load, and only when the task has not
// ended yet.

#include <chrono>
#include <optional>

namespace atasker::detail {

class TaskBase;

class WaitHook {
public:
    /// Waits for `task` to end, or until `*deadline` when `deadline` is not
    /// null. \returns whether the task ended; nullopt when this hook cannot
    /// wait here (no memory), and the caller blocks the thread instead.
    [[nodiscard]] virtual std::optional<bool> wait_until(
        const TaskBase& task, const std::chrono::steady_clock::time_point* deadline) noexcept = 0;

protected:
    WaitHook() = default;
    WaitHook(const WaitHook&) = default;
    WaitHook& operator=(const WaitHook&) = default;
    ~WaitHook() = default;
};

/// Installs `hook` for the calling thread (nullptr: waiting blocks again).
/// The hook must outlive its installation.
void set_wait_hook(WaitHook* hook) noexcept;
/// Whether the calling thread has a hook installed (it must not block).
[[nodiscard]] bool wait_hook_installed() noexcept;

}  // namespace atasker::detail
