#pragma once
/// \file task_options.hpp
/// How one task is put: name, priority, delay, supervisor, run timeout, retries, pool.

#include <chrono>
#include <optional>
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
    /// Each run's limit, from its start (0 = none): a process task's worker
    /// is killed at the deadline; a thread task is asked to stop through its
    /// std::stop_token. Either way the run ends as TimeoutError.
    std::chrono::nanoseconds timeout{0};
    /// How many more runs a failed task gets (0 = none). A run that throws,
    /// times out or whose worker process dies is a failed attempt; a
    /// canceled task is not run again.
    unsigned retries = 0;
    /// The wait before the first retry, doubled before each one after it;
    /// the task holds no slot meanwhile. Not negative.
    std::chrono::nanoseconds retry_delay{0};
    /// Which pool runs the task; empty: a function runs on a thread, an
    /// at::MpTask in a worker process (TaskType::mp). TaskType::remote sends
    /// an at::MpTask to the remote pool (TaskSupervisor::set_remote_pool()).
    /// A function, which cannot leave its process, runs only on a thread.
    std::optional<TaskType> type{};
};

}  // namespace atasker
