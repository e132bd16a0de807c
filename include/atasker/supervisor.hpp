#pragma once
/// \file supervisor.hpp
/// TaskSupervisor: prioritised queues feeding a thread pool and a process
/// pool, a record for every task, and the default `task_supervisor`.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <atasker/detail/task_base.hpp>
#include <atasker/export.hpp>
#include <atasker/pool_options.hpp>
#include <atasker/task_info.hpp>
#include <atasker/task_options.hpp>

namespace atasker {

/// What stop() does with unfinished work.
struct StopOptions {
    /// Wait for queued and running tasks to finish before returning. With
    /// false, queued tasks are canceled, running ones are asked to stop, and
    /// stop() returns without waiting for them.
    bool wait = true;
    /// Cancel queued tasks and ask running ones to stop (stop token; process
    /// tasks are killed) instead of letting them finish.
    bool cancel_tasks = false;
    /// With wait: give up after this long; what is still queued is then
    /// canceled, and stop() returns false. Running tasks keep their threads
    /// until they end (the destructor joins them).
    std::optional<std::chrono::nanoseconds> timeout{};
};

/// How long records of finished tasks stay queryable. A record is forgotten
/// when either limit is passed; 0 in either forgets at completion (atasker's
/// behaviour).
struct RetentionOptions {
    std::size_t max_finished = 10000;
    std::chrono::nanoseconds max_age = std::chrono::hours(1);
};

/// atasker's timeout_warning / timeout_critical: thresholds on the time a task
/// waits between being queued and being started. The handler runs while the
/// task still waits (on the supervisor's timer thread). 0 turns a level off.
struct WaitTimeouts {
    std::chrono::nanoseconds warning{0};
    std::chrono::nanoseconds critical{0};
    std::function<void(const TaskInfo&)> on_warning{};   ///< default: log a warning
    std::function<void(const TaskInfo&)> on_critical{};  ///< default: log a critical message
};

/// Feeds prioritised tasks to its pools and keeps a record of each.
/// Every member function is thread-safe.
class ATASKER_API TaskSupervisor {
public:
    TaskSupervisor();
    TaskSupervisor(const TaskSupervisor&) = delete;
    TaskSupervisor& operator=(const TaskSupervisor&) = delete;
    /// Stops (canceling queued tasks, waiting for running ones) if still active.
    ~TaskSupervisor();

    /// The default supervisor (also reachable as `task_supervisor`).
    [[nodiscard]] static TaskSupervisor& instance();

    /// Sizes the thread pool; works while running (running tasks are never
    /// interrupted). \throws Error on a contradictory configuration.
    void set_thread_pool(const PoolOptions& options);
    /// Sets how long finished records are kept.
    void set_retention(const RetentionOptions& options);
    /// Sets wait-time thresholds and their handlers.
    void set_wait_timeouts(WaitTimeouts timeouts);

    /// Starts the pools (min_size threads at once). Starting twice is harmless.
    void start();
    /// Stops; see StopOptions. Returns false when a timeout left work unfinished.
    bool stop(const StopOptions& options = {});
    /// Sleeps until stop() is called from elsewhere (returns at once when not active).
    void block();
    [[nodiscard]] bool is_active() const;

    /// O(1); empty when the id is unknown or its record was forgotten.
    [[nodiscard]] std::optional<TaskInfo> get_task_info(TaskId id) const;
    /// Every record held, optionally of one type, in no particular order.
    [[nodiscard]] std::vector<TaskInfo> get_tasks(std::optional<TaskType> type = std::nullopt) const;
    [[nodiscard]] SupervisorInfo get_info() const;
    /// A queued or delayed task becomes canceled and never runs (its handle
    /// throws CanceledError); a running thread task whose function takes a
    /// std::stop_token is asked to stop. Returns false when there was nothing
    /// to cancel (unknown, finished, or running without a stop token).
    bool cancel_task(TaskId id);

    /// Puts a task (background_task() calls this). Takes its own reference.
    /// \throws Error when the supervisor is not started.
    TaskId put_task(detail::TaskBase* task, const TaskOptions& options);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

/// The default supervisor. In static initialisers use TaskSupervisor::instance().
extern ATASKER_API TaskSupervisor& task_supervisor;

}  // namespace atasker
