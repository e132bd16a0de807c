#pragma once
// FiberWait: the wait hook of an aloop's thread (core/wait_hook.hpp). A fiber
// that calls Task::get(), wait() or wait_for() suspends on a fiber future
// that a TaskWatcher fulfils when the task ends, so the loop's other fibers
// keep running meanwhile.

#include <chrono>
#include <optional>

#include "core/wait_hook.hpp"

namespace atasker::detail {

class FiberWait final : public WaitHook {
public:
    /// From a fiber of the thread it is installed on (any fiber, the loop's
    /// own included). Suspends that fiber only.
    [[nodiscard]] std::optional<bool> wait_until(
        const TaskBase& task, const std::chrono::steady_clock::time_point* deadline) noexcept override;
};

}  // namespace atasker::detail
