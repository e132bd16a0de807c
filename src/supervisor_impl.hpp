#pragma once
// TaskSupervisor::Impl: one mutex guards the task table, both admissions and
// the pools' bookkeeping. Work starts because something happened (put,
// completion, resize, timer); nothing polls.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include <atasker/supervisor.hpp>

#include "admission.hpp"
#include "task_table.hpp"
#include "thread_pool.hpp"
#include "timers.hpp"

namespace atasker {

struct TaskSupervisor::Impl final : detail::ThreadPool::Host {
    Impl();
    ~Impl();

    // ThreadPool::Host
    Taken take_thread_task() override;
    std::string complete_thread_task(detail::TaskBase* task, TaskStatus status, std::string error) override;
    void settle_task(detail::TaskBase* task, const std::string& log_line) noexcept override;

    TaskId put(detail::TaskBase* task, const TaskOptions& options);
    bool cancel(TaskId id);
    bool stop(const StopOptions& options);

    /// Queues a task whose record is already in the table (put or delay end).
    void enqueue(detail::TaskBase* task, detail::Record& record, detail::WallNanos now);
    /// Marks a queued or delayed task canceled; it is settled later, outside the lock.
    void cancel_locked(detail::TaskBase* task, detail::Record& record, detail::WallNanos now,
                       std::vector<detail::TaskBase*>& to_settle);
    /// Records that a task ended and returns the line to log about it. The
    /// supervisor's reference passes to whoever settles the task.
    std::string finish_record(detail::TaskBase* task, detail::Record& record, TaskStatus status, std::string error,
                              detail::WallNanos now);
    /// Cancels every queued task and collects running ones to ask to stop.
    void cancel_all_locked(std::vector<detail::TaskBase*>& to_settle, std::vector<detail::TaskBase*>& to_stop);
    /// Without the lock: settles canceled tasks, asks running ones to stop.
    void settle_all(std::vector<detail::TaskBase*>& to_settle, std::vector<detail::TaskBase*>& to_stop) noexcept;
    void wake_thread_pool();
    void schedule_wait_timeouts(TaskId id);
    [[nodiscard]] bool drained() const noexcept;

    static void on_delay_end(void* self, std::uint64_t id) noexcept;
    static void on_wait_warning(void* self, std::uint64_t id) noexcept;
    static void on_wait_critical(void* self, std::uint64_t id) noexcept;
    void on_wait_timeout(TaskId id, bool critical) noexcept;

    mutable std::mutex mutex;
    std::condition_variable state_cv;  // active changes, drained during stop
    detail::TaskTable table;
    detail::Admission thread_admission{true};
    detail::ThreadPool thread_pool{mutex, *this};
    detail::Timers timers;
    PoolOptions thread_options;
    std::shared_ptr<const WaitTimeouts> wait_timeouts;
    bool active = false;
    bool ever_started = false;
    bool stopping = false;
    std::size_t delayed = 0;
    std::uint64_t stop_calls = 0;  // block() returns when this changes
};

}  // namespace atasker
