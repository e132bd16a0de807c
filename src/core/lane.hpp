#pragma once
// Lane: one admission, one runner and its options. The supervisor holds its
// lanes in an array indexed by TaskType and talks to each only through this
// interface; the thread lane runs tasks on threads, the process lane carries
// them to worker processes. A lane reaches back into the core through
// LaneHost.
//
// A lane's members say whether they expect the supervisor's mutex held
// ("under the mutex") or not; the order locks are taken in is in
// supervisor_mutex.hpp.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <atasker/detail/task_base.hpp>
#include <atasker/pool_options.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task_info.hpp>

#include "core/admission.hpp"
#include "core/supervisor_mutex.hpp"

namespace atasker::detail {

/// A task a lane took to run: the task, where its progress goes, and what
/// the lane attached to it (the process lane: the worker slot it claimed).
struct Job {
    TaskBase* task = nullptr;
    std::atomic<float>* progress = nullptr;
    std::size_t ticket = 0;
};

class Lane;

/// The core as a lane sees it: implemented by the supervisor.
class LaneHost {
public:
    [[nodiscard]] virtual SupervisorMutex& supervisor_mutex() noexcept = 0;
    /// Under the mutex: the next task of `lane` its admission lets start,
    /// recorded as started at `now` (wall-clock nanoseconds); no task when
    /// none may start.
    [[nodiscard]] virtual Job take(Lane& lane, std::int64_t now) noexcept = 0;
    /// Under the mutex: as take(), the next queued task of `lane` in line
    /// whatever the limits, when it may ride with a task take() returned
    /// (Admission::pop_rider()); no task when the next one may not.
    [[nodiscard]] virtual Job take_rider(Lane& lane, std::int64_t now) noexcept = 0;
    /// Under the mutex: records that a run of `task` ended at `now` (its
    /// outcome is stored in it) and frees its place in the admission; a
    /// failure leaves the line to log about it in `log_line` (left as it is
    /// otherwise). True: the task ended, and the caller then settles it.
    /// False: it failed and waits to run again (TaskOptions::retries); the
    /// supervisor keeps it, and the caller must not touch it any more.
    [[nodiscard]] virtual bool complete(TaskBase* task, std::int64_t now, std::string& log_line) = 0;
    /// Under the mutex: `task`, started and not yet ended, runs on `worker`
    /// (a remote worker host, host:pid), the `deliveries`-th host given it.
    virtual void note_worker(TaskBase* task, std::string worker, unsigned deliveries) noexcept = 0;
    /// Under the mutex: how long records of finished tasks are kept (a lane
    /// that keeps records elsewhere keeps them as long).
    [[nodiscard]] virtual const RetentionOptions& retention() const noexcept = 0;
    /// Under the mutex: a started task never ran (its call never reached a
    /// worker): it frees its place and waits in the queue again.
    virtual void requeue(TaskBase* task) noexcept = 0;
    /// Without the mutex: marks the task done, runs its callback, reports
    /// `log_line` (when not empty: TaskBase::report_failure picks the level),
    /// drops the supervisor's reference.
    virtual void settle(TaskBase* task, const std::string& log_line) noexcept = 0;
    /// Under the mutex: the lane's runners are all back from their tasks,
    /// each settled; the supervisor may have become idle.
    virtual void lane_quiet() noexcept = 0;
    /// Under the mutex, where complete() was called by a thread that is not
    /// one of the lane's runners (a fiber loop): the task will be settled
    /// there, and end_settle() (without the mutex) says when it was. Until
    /// then the supervisor is not idle.
    virtual void begin_settle() noexcept = 0;
    virtual void end_settle() noexcept = 0;

protected:
    ~LaneHost() = default;
};

class Lane {
public:
    /// critical_unbounded: critical tasks start whatever the load (threads);
    /// otherwise they only jump the line (processes).
    Lane(LaneHost& host, bool critical_unbounded) noexcept : host_(host), admission_(critical_unbounded) {}
    Lane(const Lane&) = delete;
    Lane& operator=(const Lane&) = delete;
    virtual ~Lane() = default;

    [[nodiscard]] Admission& admission() noexcept { return admission_; }
    [[nodiscard]] const Admission& admission() const noexcept { return admission_; }

    // ---- under the mutex
    /// Why a task cannot be put on this lane now (it is not set up), as the
    /// message of the error a put throws; null when it can.
    [[nodiscard]] virtual const char* refusal() const noexcept { return nullptr; }
    /// Takes `options` (validated by the caller): admission limits always;
    /// with `active`, the runner too (threads, worker processes). May release
    /// `lock` for slow work (forking). On failure the lane keeps what it had.
    virtual void configure(const PoolOptions& options, bool active, std::unique_lock<SupervisorMutex>& lock) = 0;
    /// Starts the runner with the options it has (start()); may release `lock`.
    virtual void start(std::unique_lock<SupervisorMutex>& lock) = 0;
    /// Wakes (or starts) runners for the tasks its admission lets start.
    virtual void wake() noexcept = 0;
    /// Fills the runner's part of `info` (workers, idle).
    virtual void describe(PoolInfo& info) const = 0;
    /// Whether start_here() may start a task on the putting thread: a field,
    /// so that the put of a lane that never does asks nothing more.
    [[nodiscard]] bool starts_here() const noexcept { return starts_here_; }
    /// For a task that admission lets start now (its record's progress at
    /// `progress`): claims what running it on the calling thread needs and
    /// returns the job, which run_here() then runs once the mutex is
    /// released; nothing when this task does not start on the putting thread.
    [[nodiscard]] virtual std::optional<Job> start_here(TaskBase* /*task*/, std::atomic<float>* /*progress*/) noexcept {
        return std::nullopt;
    }
    /// Whether start_waited() may give a thread that waits for a task the
    /// task's end: a field, as starts_here().
    [[nodiscard]] bool runs_waited() const noexcept { return runs_waited_; }
    /// For `task`, started and not ended, waited for by a thread that would
    /// otherwise block: takes what ending it on that thread needs (the
    /// process lane: the answer of a call its put started) and returns the
    /// job, which run_waited() ends once the mutex is released; nothing when
    /// it ends elsewhere. Until run_waited() returns, the lane keeps what the
    /// job runs on.
    [[nodiscard]] virtual std::optional<Job> start_waited(TaskBase* /*task*/) noexcept {
        return std::nullopt;
    }
    /// Whether a task queued now could start now (a runner is free or may be
    /// started): puts that skip the mutex count on it (supervisor_mutex.hpp).
    [[nodiscard]] virtual bool hungry() const noexcept { return false; }
    /// A started task's progress as seen where it runs; negative when its
    /// record holds it.
    [[nodiscard]] virtual float live_progress(const TaskBase& /*task*/) const noexcept { return -1.0F; }
    /// Runners finish what they run, then end; nothing new starts.
    virtual void begin_stop() = 0;
    /// Joins runners that have ended; with `all`, waits for every one first
    /// (releasing `lock` meanwhile). Once none is left, frees what it ran on.
    virtual void join(std::unique_lock<SupervisorMutex>& lock, bool all) = 0;
    /// No runner left, not even one on its way out.
    [[nodiscard]] virtual bool empty() const noexcept = 0;
    /// Whether a runner is running a task, or is on its way back from one
    /// (settling it); LaneHost::lane_quiet() says when none is.
    [[nodiscard]] virtual bool busy() const noexcept = 0;

    // ---- without the mutex
    /// Runs what start_here() returned.
    virtual void run_here(const Job& /*job*/) noexcept {}
    /// Ends what start_waited() returned: completes and settles the task
    /// (LaneHost::complete(), begin_settle(), settle(), end_settle()) as the
    /// lane's runners would.
    virtual void run_waited(const Job& /*job*/) noexcept {}
    /// Asks the running `task` to stop; false when it cannot be asked.
    virtual bool request_stop(TaskBase* task) noexcept { return task->request_stop(); }
    /// Whether the calling thread is one of this lane's runners.
    [[nodiscard]] virtual bool runs_this_thread() const noexcept = 0;

protected:
    LaneHost& host_;
    Admission admission_;
    bool starts_here_ = false;  // set by a lane that overrides start_here()
    bool runs_waited_ = false;  // set by a lane that overrides start_waited()
};

/// Every lane, indexed by TaskType. Defined where every lane is known (the
/// highest layer that holds one), so the core names none of them.
[[nodiscard]] std::vector<std::unique_ptr<Lane>> make_lanes(LaneHost& host);

}  // namespace atasker::detail
