#pragma once
/// \file detail/background_worker.hpp
/// WorkerCore: the type-erased scheduler behind every worker. It owns the
/// worker's state machine (active, one run in flight, a pending timer), puts
/// each run as a task on the supervisor and registers itself as the
/// supervisor's Service. Held by shared_ptr so runs and timer calls that
/// outlive a stop never touch freed memory. Users never touch it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include <atasker/export.hpp>
#include <atasker/priority.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task.hpp>

namespace atasker {

class Worker;
struct WorkerOptions;
struct WorkerStartOptions;
struct WorkerInfo;

namespace detail {

/// What a worker does when it has work (see WorkerOptions for the meaning).
enum class WorkerKind { loop, interval, delay, event, queue };

class ATASKER_API WorkerCore final : public Service, public std::enable_shared_from_this<WorkerCore> {
public:
    using Clock = std::chrono::steady_clock;
    /// Runs the executor once; false stops the worker.
    using Execute = std::function<bool(std::stop_token)>;
    /// Items waiting (queue workers; empty function for the others).
    using Pending = std::function<std::size_t()>;

    /// \throws Error on contradictory options.
    WorkerCore(WorkerOptions options, bool queue, Execute execute, Pending pending, Worker* owner);
    WorkerCore(const WorkerCore&) = delete;
    WorkerCore& operator=(const WorkerCore&) = delete;
    ~WorkerCore();

    void start(const WorkerStartOptions& overrides);
    void stop(bool wait);
    [[nodiscard]] bool is_active() const;
    [[nodiscard]] WorkerInfo info() const;
    /// An event worker was triggered.
    void trigger();
    /// A queue worker got an item.
    void work_arrived();
    /// The Worker object is going away: on_error gets no reference any more.
    void orphan() noexcept;

    void stop_service() noexcept override;
    [[nodiscard]] int stop_order() const noexcept override { return 0; }

private:
    using Lock = std::unique_lock<std::mutex>;

    void arm(Lock& lock, Clock::time_point when);
    void launch(Lock& lock);
    void on_timer(std::uint64_t generation);
    void run(std::stop_token token, std::uint64_t generation, std::uint64_t seq) noexcept;
    void task_finished(std::uint64_t seq, bool canceled) noexcept;
    void finish_run(Lock& lock);
    void schedule_next(Lock& lock);
    void report_error(const std::exception_ptr& error) noexcept;
    /// Event and queue workers: a trigger or an item waits.
    [[nodiscard]] bool has_work_locked() const;
    void halt_locked(Lock& lock, bool log_it, const std::string& why);

    mutable std::mutex mutex_;
    std::condition_variable idle_cv_;  // in_flight_ went false
    TaskSupervisor* supervisor_;
    std::string name_;
    Priority priority_;
    WorkerKind kind_;
    std::chrono::nanoseconds period_{0};  // interval or delay
    std::chrono::nanoseconds delay_before_{0};
    int overrun_;  // Overrun, as int to keep workers.hpp out of this header
    std::function<void(std::exception_ptr, Worker&)> on_error_;
    Execute execute_;
    Pending pending_;
    Worker* owner_;

    bool active_ = false;
    bool attached_ = false;
    bool in_flight_ = false;
    std::size_t tasks_alive_ = 0;  // run tasks put whose completion callback has not run
    bool triggered_ = false;
    std::uint64_t generation_ = 0;  // bumped by start/stop: stale timers and runs do nothing
    std::uint64_t run_seq_ = 0;
    TimerId timer_ = 0;
    Clock::time_point planned_{};  // interval workers: the tick of the run in flight or armed
    std::thread::id runner_{};     // the thread in the executor now
    Task<void> current_;

    std::uint64_t runs_ = 0;
    std::uint64_t errors_ = 0;
    std::uint64_t skipped_ticks_ = 0;
    std::uint64_t late_runs_ = 0;
    TaskId last_task_ = 0;
};

}  // namespace detail
}  // namespace atasker
