#pragma once
/// \file task_options.hpp
/// How one task is put: name, priority, delay, supervisor, run timeout.

#include <chrono>
#include <string>

#include <atasker/priority.hpp>

namespace atasker {

class TaskSupervisor;

/// Options of background_task(), co_apply() and co_mp_apply(); designated
/// initializers read well: `{.name = "resize", .priority = Priority::low, .delay = 50ms}`.
struct TaskOptions {
    std::string name{};                    ///< shows in TaskInfo::name and the log
    Priority priority = Priority::normal;  ///< decides when the task starts (see PoolOptions)
    std::chrono::nanoseconds delay{0};     ///< wait this long, holding no slot, before queueing
    TaskSupervisor* supervisor = nullptr;  ///< nullptr: the default task_supervisor
    /// Process tasks only: kill the worker and fail with TimeoutError after this
    /// long running (0 = no limit).
    std::chrono::nanoseconds timeout{0};
};

}  // namespace atasker
