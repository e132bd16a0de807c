#pragma once
/// \file supervisor.hpp
/// TaskSupervisor: prioritised queues feeding a thread pool and a process
/// pool, a record for every task, and the default `task_supervisor`.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <atasker/detail/task_base.hpp>
#include <atasker/export.hpp>
#include <atasker/pool_options.hpp>
#include <atasker/task_info.hpp>
#include <atasker/task_options.hpp>

namespace atasker {

namespace detail {
/// Something that lives on a supervisor and must stop before its pools:
/// workers (order 0) stop first, then aloops (order 1).
class Service {
public:
    /// Stops the service and waits for what it runs; called without locks.
    virtual void stop_service() noexcept = 0;
    [[nodiscard]] virtual int stop_order() const noexcept = 0;

protected:
    ~Service() = default;
};
}  // namespace detail

class ALoop;
struct ALoopOptions;
struct RemotePoolOptions;
class TaskSupervisor;

namespace detail {
/// A task handle's link to its supervisor, safe to use after the supervisor
/// was destroyed (it then answers as for a forgotten task). Thread-safe.
class ATASKER_API SupervisorLink {
public:
    SupervisorLink() noexcept = default;
    explicit SupervisorLink(TaskSupervisor* supervisor) noexcept;
    /// TaskSupervisor::get_task_info(); empty once the supervisor is destroyed.
    [[nodiscard]] std::optional<TaskInfo> task_info(TaskId id) const;
    /// TaskSupervisor::cancel_task(); false once the supervisor is destroyed.
    bool cancel_task(TaskId id) const;
    /// Task::wait() on a task that has not ended and waiter_may_run(): ends
    /// it on the calling thread when its lane lets it (the process lane: the
    /// call its put started is unanswered or its answer unclaimed), so the
    /// thread that waits reads the answer itself instead of being woken by
    /// one that read it; false when it did not (it ends elsewhere).
    bool run_waited(TaskBase& task) const noexcept;

private:
    TaskSupervisor* supervisor_ = nullptr;
    std::uint64_t serial_ = 0;  // tells a destroyed supervisor from a new one at the same address
};
}  // namespace detail

/// Identifies a call scheduled with TaskSupervisor::call_at(); 0 is never one.
using TimerId = std::uint64_t;

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
    std::size_t max_finished = 10000;                          ///< the most finished records kept; the oldest go first
    std::chrono::nanoseconds max_age = std::chrono::hours(1);  ///< how long a record is kept after its task finished
};

/// atasker's timeout_warning / timeout_critical: thresholds on the time a task
/// waits between being queued and being started. The handler runs while the
/// task still waits (on the supervisor's timer thread). 0 turns a level off.
struct WaitTimeouts {
    std::chrono::nanoseconds warning{0};   ///< wait longer than this: on_warning runs (0: never)
    std::chrono::nanoseconds critical{0};  ///< wait longer than this: on_critical runs (0: never)
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
    /// Stops (canceling queued tasks, asking running ones to stop and waiting
    /// for them) if still active. Safe at program exit without a stop() call,
    /// and from std::exit() in one of its own tasks (then nothing waits for
    /// the calling task). Handles on its tasks stay usable (see Task).
    ~TaskSupervisor();

    /// The default supervisor (also reachable as `task_supervisor`).
    [[nodiscard]] static TaskSupervisor& instance();

    /// Sizes the thread pool; works while running (running tasks are never
    /// interrupted). \throws Error on a contradictory configuration.
    void set_thread_pool(const PoolOptions& options);
    /// Sets up (or resizes) the process pool: worker processes forked by the
    /// zygote that at::init() started (called here if it was not). Same rules
    /// as the thread pool, except that critical tasks only jump the line.
    /// pool_size 0 means one worker per slot at::init() reserved.
    /// \throws Error on a contradictory configuration, or more workers than
    /// slots.
    void set_mp_pool(const PoolOptions& options);
    /// Sets up (or resizes) the remote pool: remote tasks
    /// (TaskType::remote) go to the Redis server at `options.url`, where
    /// workers on any host (at::serve_remote()) run them. Connects when the
    /// supervisor is active (else at start()). The url and namespace cannot
    /// change while it is active. See remote.hpp.
    /// \throws Error for a bad url or namespace, a contradictory
    /// configuration, a server that cannot be reached, another url while
    /// active, or a library built without the remote lane.
    void set_remote_pool(const RemotePoolOptions& options);
    /// Sets how long finished records are kept.
    void set_retention(const RetentionOptions& options);
    /// Sets wait-time thresholds and their handlers.
    void set_wait_timeouts(WaitTimeouts timeouts);

    /// Starts the pools (min_size threads at once). Starting twice is harmless.
    void start();
    /// Stops; see StopOptions. Returns false when a timeout left work
    /// unfinished (or, with wait false, when tasks were still running).
    ///
    /// From one of this supervisor's own tasks, or a completion callback,
    /// only `{.wait = false}` is allowed: the calling task would otherwise
    /// wait for itself. Its thread is joined by a later stop() or the
    /// destructor. While another thread's stop() is under way, stop() waits
    /// for it to end and then finishes what is left (from a task it returns
    /// false at once).
    /// \throws Error when called with wait from one of its own tasks.
    bool stop(const StopOptions& options = {});
    /// Sleeps until stop() is called from elsewhere (returns at once when not active).
    void block();
    /// True between start() and stop().
    [[nodiscard]] bool is_active() const;

    /// Waits until the supervisor is idle: no task queued, delayed or
    /// running, and none still being settled. A task counts until it has
    /// ended in every way a caller can see: its handles are ready(), its
    /// completion callback has returned, its failure is logged. Tasks put
    /// before the call (the puts returned) are waited for; tasks put
    /// meanwhile are too, as long as they keep it busy: under a stream of
    /// puts it may never return. Returns at once on a supervisor that is not
    /// started. Blocks the calling thread; wakes once, when the last piece
    /// of work ends (no polling). Thread-safe, but not for a completion
    /// callback, which would wait for itself: one on a pool thread throws,
    /// one that cancel() runs on the canceling thread would wait in vain.
    /// \throws Error when called from one of this supervisor's own tasks or
    /// callbacks on its threads.
    void wait_idle();
    /// As wait_idle(), giving up after `timeout`. \returns true once idle,
    /// false when `timeout` passed first (BS::thread_pool's wait_for).
    /// \throws Error as wait_idle().
    bool wait_idle(std::chrono::nanoseconds timeout);

    /// O(1); empty when the id is unknown or its record was forgotten.
    [[nodiscard]] std::optional<TaskInfo> get_task_info(TaskId id) const;
    /// Every record held, optionally of one type, in no particular order.
    [[nodiscard]] std::vector<TaskInfo> get_tasks(std::optional<TaskType> type = std::nullopt) const;
    /// A snapshot of both pools (configuration, workers, tasks queued and
    /// running by priority), the delayed tasks and the records held.
    [[nodiscard]] SupervisorInfo get_info() const;
    /// A queued or delayed task becomes canceled and never runs (its handle
    /// throws CanceledError); a running thread task whose function takes a
    /// std::stop_token is asked to stop. Returns false when there was nothing
    /// to cancel (unknown, finished, or running without a stop token).
    bool cancel_task(TaskId id);

    /// Puts a task (background_task() calls this), taking over one
    /// reference the caller owns (released when this throws).
    /// \throws Error when the supervisor is not started.
    TaskId put_task(detail::TaskBase* task, const TaskOptions& options);

    /// Runs `fn` at `when` on the supervisor's timer thread, the one that
    /// also serves delays and wait-time thresholds; `fn` should be quick
    /// (put a task for real work). Returns 0, scheduling nothing, while the
    /// supervisor is stopped. Exceptions from `fn` are logged.
    TimerId call_at(std::chrono::steady_clock::time_point when, std::function<void()> fn);
    /// Drops a call that has not started. False when it already ran or is
    /// running; in that case it has finished by the time this returns (unless
    /// called from the call itself).
    bool cancel_call(TimerId id);

    /// Registers a service to stop, in stop_order, before the pools drain.
    void attach_service(detail::Service* service);
    /// Forgets a service registered with attach_service() (it stopped by itself).
    void detach_service(detail::Service* service);

    /// atasker's create_aloop: starts a named thread running a Boost.Fiber
    /// scheduler (see aloop.hpp). The reference stays valid until this
    /// supervisor stops. \throws Error when the supervisor is not started or
    /// an active aloop has that name.
    ALoop& create_aloop(std::string name, ALoopOptions options);
    /// create_aloop() with the default ALoopOptions.
    ALoop& create_aloop(std::string name);
    /// The aloop of that name, or nullptr.
    [[nodiscard]] ALoop* get_aloop(std::string_view name);
    /// Stops the aloop of that name (see ALoop::stop); false when there is none.
    bool stop_aloop(std::string_view name, bool wait = true);

    struct Impl;

private:
    friend class detail::SupervisorLink;
    std::unique_ptr<Impl> impl_;
    std::uint64_t serial_;  // unique in the process, never 0
};

/// The default supervisor. In static initialisers use TaskSupervisor::instance().
extern ATASKER_API TaskSupervisor& task_supervisor;

// Inline: every put makes one, for its handle.
inline detail::SupervisorLink::SupervisorLink(TaskSupervisor* supervisor) noexcept
    : supervisor_(supervisor), serial_(supervisor != nullptr ? supervisor->serial_ : 0) {}

}  // namespace atasker
