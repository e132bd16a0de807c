#pragma once
// TaskSupervisor::Impl: one mutex guards the task table, both admissions and
// the pools' bookkeeping; a put that finds it held leaves its task in the
// mutex's inbox (supervisor_mutex.hpp). Work starts because something
// happened (put, completion, resize, timer); nothing polls.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <atasker/supervisor.hpp>

#include "core/admission.hpp"
#include "fiber/direct_calls.hpp"
#include "process/process_lane.hpp"
#include "core/reserved_ids.hpp"
#include "core/supervisor_mutex.hpp"
#include "core/task_table.hpp"
#include "thread/thread_pool.hpp"
#include "core/timers.hpp"

namespace atasker {

struct TaskSupervisor::Impl final : detail::ThreadPool::Host, detail::DirectHost, detail::SupervisorMutex::Host {
    Impl();
    ~Impl();

    // ThreadPool::Host
    Taken take_task(TaskType pool, std::int64_t now) override;
    std::string complete_task(detail::TaskBase* task, TaskStatus status, std::string error, std::int64_t now) override;
    void settle_task(detail::TaskBase* task, const std::string& log_line) noexcept override;
    int thread_started(TaskType pool) noexcept override;
    void thread_exiting(TaskType pool) noexcept override;

    // SupervisorMutex::Host
    void queue_from_inbox(detail::TaskBase* oldest) noexcept override;
    [[nodiscard]] bool hungry() const noexcept override;
    void unlock_and_send(std::mutex& mutex) noexcept override;

    // DirectHost
    void finish_direct(detail::TaskBase* task, detail::ThreadPool::Sleeper* borrowed, double progress) noexcept override;
    void requeue_direct(detail::TaskBase* task, detail::ThreadPool::Sleeper* borrowed) noexcept override;
    /// A process task the calling fiber loop can carry to a worker itself
    /// (see direct_calls.hpp): admitted and started, with the borrowed thread.
    struct DirectStart {
        detail::DirectCalls* calls = nullptr;
        detail::ThreadPool::Sleeper* borrowed = nullptr;
        detail::MpCall call{};
    };
    /// Under the lock: starts `task` for a direct call when the process pool
    /// would start it now and has an idle worker; otherwise nothing (calls null).
    [[nodiscard]] DirectStart start_direct(detail::TaskBase* task, detail::Record& record, detail::WallNanos now);

    [[nodiscard]] detail::Admission& admission(TaskType t) noexcept {
        return t == TaskType::thread ? thread_admission : mp_admission;
    }
    [[nodiscard]] detail::ThreadPool& pool(TaskType t) noexcept { return t == TaskType::thread ? thread_pool : mp_threads; }
    /// Creates the process pool if it is set up and missing; applies its options.
    void ensure_mp_pool(std::unique_lock<detail::SupervisorMutex>& lock);
    /// A snapshot of a record, with live progress from a worker process.
    [[nodiscard]] TaskInfo info_of(TaskId id, const detail::Record& r) const;

    TaskId put(detail::TaskBase* task, const TaskOptions& options);
    bool cancel(TaskId id);
    bool stop(const StopOptions& options);

    /// Queues a task whose record is already in the table (put or delay end).
    void enqueue(detail::TaskBase* task, detail::Record& record, detail::WallNanos now) noexcept;
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
    void wake(TaskType pool) noexcept;
    /// Makes `r` the record of `task`, which it now holds a reference to.
    static void link_record(detail::Record& r, detail::TaskBase* task) noexcept;
    /// Tops up the ids a put may take without the mutex.
    void refill_reserved_ids() noexcept;
    /// Never throws: a task whose thresholds cannot be set is queued without
    /// them, and unlock_and_send() says so.
    void schedule_wait_timeouts(TaskId id) noexcept;
    [[nodiscard]] bool drained() const noexcept;

    static void on_delay_end(void* self, std::uint64_t id) noexcept;
    static void on_wait_warning(void* self, std::uint64_t id) noexcept;
    static void on_wait_critical(void* self, std::uint64_t id) noexcept;
    void on_wait_timeout(TaskId id, bool critical) noexcept;

    mutable detail::SupervisorMutex mutex{*this};
    std::atomic<int> puts_in_flight{0};  // see PutLock
    detail::ReservedIds reserved_ids;   // taken by puts that go to the inbox
    std::condition_variable_any state_cv;  // active changes, drained during stop
    detail::TaskTable table;
    detail::Admission thread_admission{true};
    detail::ThreadPool thread_pool{mutex, *this, TaskType::thread, detail::ThreadPool::critical_extra_threads};
    detail::Admission mp_admission{false};
    // One thread per worker process: it carries the worker's tasks and waits.
    detail::ThreadPool mp_threads{mutex, *this, TaskType::mp, 0};
    std::unique_ptr<detail::MpPool> mp_pool;
    std::optional<PoolOptions> mp_options;  // empty until set_mp_pool()
    detail::Timers timers;
    std::size_t thresholds_lost = 0;  // since the last unlock_and_send()
    PoolOptions thread_options;
    std::shared_ptr<const WaitTimeouts> wait_timeouts;
    std::atomic<bool> has_wait_timeouts{false};  // read by puts without the mutex
    bool active = false;
    bool ever_started = false;
    bool stopping = false;
    std::size_t delayed = 0;
    std::uint64_t stop_calls = 0;  // block() returns when this changes
    std::vector<detail::Service*> services;
};

}  // namespace atasker
