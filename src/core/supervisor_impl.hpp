#pragma once
// TaskSupervisor::Impl: one mutex guards the task table, the lanes'
// admissions and their runners' bookkeeping; a put that finds it held
// leaves its task in the mutex's inbox (supervisor_mutex.hpp). Work starts
// because something happened (put, completion, resize, timer); nothing polls.
//
// The supervisor's work is split by what it does: supervisor.cpp (life
// cycle, configuration, queries), supervisor_put.cpp (puts, the inbox,
// queueing, cancel), supervisor_lanes.cpp (what lanes call: take, complete,
// requeue, settle), supervisor_stop.cpp (stop and the destructor's shutdown),
// supervisor_idle.cpp (wait_idle), supervisor_waited.cpp (a task run by the
// thread that waits for it), wait_thresholds.cpp (wait-time warnings).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <vector>

#include <atasker/supervisor.hpp>

#include "core/lane.hpp"
#include "core/reserved_ids.hpp"
#include "core/supervisor_mutex.hpp"
#include "core/task_table.hpp"
#include "core/timers.hpp"

namespace atasker {

struct TaskSupervisor::Impl final : detail::LaneHost, detail::SupervisorMutex::Host {
    Impl();
    ~Impl();

    // LaneHost
    [[nodiscard]] detail::SupervisorMutex& supervisor_mutex() noexcept override { return mutex; }
    [[nodiscard]] detail::Job take(detail::Lane& lane, std::int64_t now) noexcept override;
    [[nodiscard]] detail::Job take_rider(detail::Lane& from, std::int64_t now) noexcept override;
    [[nodiscard]] bool complete(detail::TaskBase* task, std::int64_t now, std::string& log_line) override;
    void note_worker(detail::TaskBase* task, std::string worker, unsigned deliveries) noexcept override;
    void requeue(detail::TaskBase* task) noexcept override;
    [[nodiscard]] const RetentionOptions& retention() const noexcept override { return table.retention(); }
    void settle(detail::TaskBase* task, const std::string& log_line) noexcept override;
    void lane_quiet() noexcept override { notify_if_idle(); }
    void begin_settle() noexcept override { settling.fetch_add(1, std::memory_order_relaxed); }
    void end_settle() noexcept override;

    // SupervisorMutex::Host
    void queue_from_inbox(detail::TaskBase* oldest) noexcept override;
    [[nodiscard]] bool hungry() const noexcept override;

    [[nodiscard]] detail::Lane& lane(TaskType t) const noexcept { return *lanes[static_cast<std::size_t>(t)]; }
    /// Sets a lane's options (already validated); see Lane::configure.
    void configure(TaskType t, const PoolOptions& options);
    /// A snapshot of a record, with live progress from where it runs.
    [[nodiscard]] TaskInfo info_of(TaskId id, const detail::Record& r) const;

    TaskId put(detail::TaskBase* task, const TaskOptions& options);
    /// SupervisorLink::run_waited(): ends `task`, started, on the calling
    /// thread if its lane lets it (Lane::start_waited); `link` (which keeps
    /// this supervisor alive) is released once the task is taken.
    bool run_waited(detail::TaskBase* task, std::shared_lock<std::shared_mutex>& link) noexcept;
    bool cancel(TaskId id);
    bool stop(const StopOptions& options);
    /// The destructor's stop: waits for every task, then for every thread.
    void shut_down() noexcept;
    /// The destructor's stop from one of this supervisor's own threads
    /// (std::exit from a task): stops without waiting for that thread.
    void abandon() noexcept;

    /// A task taken from a lane's admission (or nullptr) as the job that
    /// runs it, its record marked started at `now`.
    [[nodiscard]] detail::Job start_job(detail::TaskBase* t, std::int64_t now) noexcept;
    /// Queues a task whose record is already in the table (put or delay end);
    /// the caller then wakes its lane.
    void enqueue(detail::TaskBase* task, detail::Record& record, detail::WallNanos now) noexcept;
    /// Marks a queued or delayed task canceled; the caller settles it once
    /// the lock is released, then calls end_settle().
    void cancel_locked(detail::TaskBase* task, detail::Record& record, detail::WallNanos now,
                       std::vector<detail::TaskBase*>& to_settle);
    /// Records how a task ended (its outcome is stored in it) and leaves the
    /// line to log about a failure in `log_line`. The supervisor's reference
    /// passes to whoever settles the task.
    void finish_record(detail::TaskBase* task, detail::Record& record, detail::WallNanos now, std::string& log_line);
    /// Cancels every queued task and collects running ones to ask to stop.
    void cancel_all_locked(std::vector<detail::TaskBase*>& to_settle, std::vector<detail::TaskBase*>& to_stop);
    /// Without the lock: settles canceled tasks, asks running ones to stop.
    void settle_all(std::vector<detail::TaskBase*>& to_settle, std::vector<detail::TaskBase*>& to_stop) noexcept;
    /// Makes `r` the record of `task`, which it now holds a reference to.
    static void link_record(detail::Record& r, detail::TaskBase* task) noexcept;
    /// Tops up the ids a put may take without the mutex.
    void refill_reserved_ids() noexcept;
    /// Never throws: a task whose thresholds cannot be set is queued without
    /// them, and the mutex says so once released.
    void schedule_wait_timeouts(TaskId id) noexcept;
    [[nodiscard]] bool drained() const noexcept;
    /// Under the mutex: nothing queued, delayed, running or being settled
    /// (the inbox aside: wait_idle() drains it first).
    [[nodiscard]] bool idle() const noexcept;
    /// Under the mutex: wakes wait_idle() callers once idle() holds.
    void notify_if_idle() noexcept;
    /// See TaskSupervisor::wait_idle(); no timeout: waits as long as it takes.
    bool wait_idle(std::optional<std::chrono::nanoseconds> timeout);
    /// Whether the calling thread is one of the lanes' threads.
    [[nodiscard]] bool on_own_thread() const noexcept;

    static void on_delay_end(void* self, std::uint64_t id) noexcept;

    // Retries and thread deadlines (run_policy.cpp), under the mutex.
    /// Gives the record of a task put with retries or a thread deadline its
    /// RunPolicy. \throws what starting the timer thread throws.
    void set_run_policy(detail::Record& r, TaskType type, const TaskOptions& options);
    /// A run of a task with a RunPolicy starts: its deadline's timer starts.
    void start_run(detail::TaskBase* task, detail::Record& r) noexcept;
    /// A run of a task with a RunPolicy ended: the deadline's outcome
    /// replaces the run's, and a failure with retries left waits to run
    /// again (true) instead of ending the task.
    [[nodiscard]] bool retry_after_run(detail::TaskBase* task, detail::Record& r) noexcept;
    /// Clears the failed run's outcome and queues the task again after its
    /// retry delay (at once without one).
    void schedule_retry(detail::TaskBase* task, detail::Record& r, detail::RunPolicy& p) noexcept;
    static void on_deadline(void* self, std::uint64_t id) noexcept;
    static void on_wait_warning(void* self, std::uint64_t id) noexcept;
    static void on_wait_critical(void* self, std::uint64_t id) noexcept;
    void on_wait_timeout(TaskId id, bool critical) noexcept;

    mutable detail::SupervisorMutex mutex{*this};
    std::atomic<int> puts_in_flight{0};  // see PutLock
    detail::ReservedIds reserved_ids;   // taken by puts that go to the inbox
    std::condition_variable_any state_cv;  // active changes, drained during stop, idle for wait_idle
    // wait_idle() callers; written under the mutex, read by end_settle() without it.
    std::atomic<std::size_t> idle_waiters{0};
    // Tasks whose record finished and whose settling is done by a thread that
    // is no lane's runner (a cancel, stop, a fiber loop's process call).
    std::atomic<std::size_t> settling{0};
    detail::TaskTable table;
    std::vector<std::unique_ptr<detail::Lane>> lanes;  // by TaskType
    detail::Timers timers;
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
