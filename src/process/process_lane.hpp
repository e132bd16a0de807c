#pragma once
// ProcessLane: process tasks, carried to worker processes. Each call claims
// an idle worker's slot for as long as it runs; the lane keeps as many
// worker processes as it has threads, each of which carries one call at a
// time and waits for the answer. A thread that carries calls without
// waiting (a fiber loop, see InlineCarrier) may start a task it puts itself,
// on an idle worker; so does any other thread, for a task whose answer the
// thread that waits for it may then read itself (PutCalls). Every call goes
// through the ProcessCall steps.
//
// Riders: when every place is taken and tasks wait, a lane thread takes
// with its task the next ones in line (Admission::pop_rider) and carries
// them in the same request; the worker runs them in turn and answers each,
// with one wake-up each way for all. How many ride is bounded so that the
// request takes about PoolOptions::batch_time at the pace calls have gone
// lately: short tasks ride in dozens, longer ones never, so a more urgent
// task put meanwhile waits at most about that long more for a place.
//
// Slots, under the supervisor's mutex: idle (a worker runs, no call), free
// (no worker), or claimed (a call runs, or a worker is being started or
// ended). At most one ProcessLane has worker processes at a time.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <atasker/detail/mp_call.hpp>

#include "core/lane.hpp"
#include "process/process_call.hpp"
#include "process/worker_processes.hpp"
#include "thread/thread_pool.hpp"

namespace atasker::detail {

class ProcessLane;
class PutCalls;

/// A thread that carries process calls without waiting for their answers
/// (a fiber loop): it sends a call, goes on with other work, and ends the
/// task when the answer arrives, through ProcessLane::end_here() (or
/// carry_again() when the call never reached its worker).
class InlineCarrier {
public:
    /// The calling thread's carrier; nullptr on threads that have none.
    [[nodiscard]] static InlineCarrier* current() noexcept;
    static void set_current(InlineCarrier* carrier) noexcept;

    /// Whether it takes calls now.
    [[nodiscard]] virtual bool open() const noexcept = 0;
    /// Sends `call` on `slot` of `lane`'s workers (claimed for it).
    virtual void start(ProcessLane& lane, WorkerProcesses& workers, std::size_t slot, const MpCall& call) noexcept = 0;

protected:
    ~InlineCarrier() = default;
};

class ProcessLane final : public Lane, ThreadPool::Host {
public:
    /// The most tasks one request carries (a task and its riders).
    static constexpr std::size_t max_riding = 32;

    explicit ProcessLane(LaneHost& host);
    ~ProcessLane() override;

    [[nodiscard]] const char* refusal() const noexcept override {
        return options_ ? nullptr : "the process pool is not set up; call set_mp_pool() before putting process tasks";
    }
    void configure(const PoolOptions& options, bool active, std::unique_lock<SupervisorMutex>& lock) override;
    void start(std::unique_lock<SupervisorMutex>& lock) override;
    void wake() noexcept override { pool_.wake_for(admission_); }
    void describe(PoolInfo& info) const override;
    [[nodiscard]] std::optional<Job> start_here(TaskBase* task, std::atomic<float>* progress) noexcept override;
    [[nodiscard]] float live_progress(const TaskBase& task) const noexcept override;
    void begin_stop() override { pool_.begin_stop(); }
    void join(std::unique_lock<SupervisorMutex>& lock, bool all) override;
    [[nodiscard]] bool empty() const noexcept override { return pool_.empty() && put_calls_running_ == 0; }
    [[nodiscard]] bool busy() const noexcept override { return pool_.busy() != 0; }
    void run_here(const Job& job) noexcept override;
    [[nodiscard]] std::optional<Job> start_waited(TaskBase* task) noexcept override;
    void run_waited(const Job& job) noexcept override;
    bool request_stop(TaskBase* task) noexcept override;
    [[nodiscard]] bool runs_this_thread() const noexcept override { return ThreadPool::current_host() == this; }

    /// Without the mutex, from an InlineCarrier: the call on `slot` ended
    /// (its outcome is stored in `task`), with the worker's last progress
    /// report (outside (0, 1]: none).
    void end_here(TaskBase* task, std::size_t slot, double progress) noexcept;
    /// Without the mutex, from an InlineCarrier: the call on `slot` never
    /// reached its worker; one of the lane's threads carries it again.
    void carry_again(TaskBase* task, std::size_t slot) noexcept;
    /// Without the mutex, from PutCalls: a call a put started has ended
    /// (end_here() or carry_again() returned); join() waits for these.
    void put_call_ended() noexcept;

private:
    class WaitingCarrier;
    class InlineStart;

    // ThreadPool::Host
    Job take(std::int64_t now) noexcept override;
    void run(const Job& job) noexcept override;
    bool finish(const Job& job, std::int64_t now, std::string& log_line) override;
    void settle(const Job& job, bool ended, const std::string& log_line) noexcept override;
    void quiet() noexcept override { host_.lane_quiet(); }
    bool busy_without_threads() const noexcept override;
    void thread_started() noexcept override;
    void thread_exiting() noexcept override;

    /// Makes the worker processes if there are none; applies the options
    /// to the admission and the threads.
    void ensure_workers(std::unique_lock<SupervisorMutex>& lock);
    /// Under the mutex: a slot for a call, idle first, else free (its worker
    /// starts when the call is sent); nullopt when none is either.
    [[nodiscard]] std::optional<std::size_t> claim(bool idle_only) noexcept;
    /// Under the mutex: the call on `slot` is over.
    void release(std::size_t slot) noexcept;
    /// A lane thread's call: carried again while it never reaches a worker.
    void carry_and_wait(std::size_t slot, const MpCall& call, std::atomic<float>* progress) noexcept;
    /// Under the mutex, on the lane thread that took the task on `slot`:
    /// takes riders for it when every place is taken and tasks wait.
    void take_riders(std::size_t slot, std::int64_t now) noexcept;
    /// A lane thread's job with riders: every task's call in one request.
    void carry_riders(const Job& job) noexcept;
    /// Sends `pc` until every call has an outcome, carrying again what
    /// never reached a worker; the number of sends in a row that reached
    /// none, or 0 when it ended in an error already stored.
    [[nodiscard]] int carry(ProcessCall& pc, std::size_t slot) noexcept;
    /// Folds one request's duration per task into task_ns_.
    void timed(std::chrono::steady_clock::duration took, std::size_t tasks) noexcept;
    /// Without the mutex, on the slot's carrier: replaces the retiring
    /// worker on `slot` (claimed), then makes the slot idle (free if no
    /// worker could start).
    void recycle(std::size_t slot) noexcept;
    /// The pool's options as the workers take them; checks what only the
    /// process side can (an initializer registered before at::init(), a
    /// memory limit above a fresh worker's RSS). \throws Error.
    [[nodiscard]] static WorkerProcesses::Lifetime lifetime_of(const PoolOptions& options);
    /// Slots with a worker (idle or claimed): all but the free ones.
    [[nodiscard]] std::size_t live() const noexcept { return slots_.size() - free_.size(); }

    std::optional<PoolOptions> options_;  // empty until set_mp_pool()
    ThreadPool pool_;
    std::unique_ptr<WorkerProcesses> workers_;
    std::vector<Job> slots_;          // the job running on each slot
    std::vector<std::size_t> idle_;   // slots whose worker waits for a call
    std::vector<std::size_t> free_;   // slots with no worker
    std::vector<char> recycling_;     // per slot: its call ended, its worker is replaced before release
    // Per slot: the riders of its call (the carrying thread's list), or null.
    std::vector<const std::vector<Job>*> riders_;
    // A request's recent duration per task, in ns (0 until one was timed).
    std::atomic<std::int64_t> task_ns_{0};
    // Calls started by the putting thread (start_here on a plain thread),
    // ended by the thread that waits for the task or by PutCalls' collector;
    // made with the workers. Counted under the mutex: join() waits for them
    // before the workers go.
    std::unique_ptr<PutCalls> put_calls_;
    std::size_t put_calls_running_ = 0;
    std::chrono::steady_clock::time_point put_call_last_ended_{};  // under the mutex
    std::condition_variable_any put_calls_done_;
};

}  // namespace atasker::detail
