#pragma once
// DirectCalls: process tasks a fiber loop carries to a worker itself. When a
// fiber of an aloop awaits co_mp_apply and the process pool can start the
// task at once, the supervisor lends the loop an idle pool thread's worker:
// the loop sends the request, the worker rings the loop's doorbell, and the
// loop's server fiber completes the task. The loop's thread sleeps on that
// doorbell (LoopScheduler), so an answer costs two context switches, as a
// bare semaphore ping-pong does, instead of four through a pool thread.
// Everything here runs on the loop's thread.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <atasker/detail/mp_call.hpp>
#include <atasker/detail/task_base.hpp>

#include "sync/doorbell.hpp"
#include "process/worker_processes.hpp"
#include "process/shm_slots.hpp"
#include "thread/thread_pool.hpp"

namespace boost::fibers {
class context;
}

namespace atasker::detail {

/// The supervisor's side of a direct call's end.
class DirectHost {
public:
    /// The task ran (its outcome is stored in it): record it, give the
    /// borrowed thread back, settle the task. `progress`: the worker's last
    /// report (outside (0, 1]: none).
    virtual void finish_direct(TaskBase* task, ThreadPool::Sleeper* borrowed, double progress) noexcept = 0;
    /// The call never reached a worker: queue the task again for a pool thread.
    virtual void requeue_direct(TaskBase* task, ThreadPool::Sleeper* borrowed) noexcept = 0;

protected:
    ~DirectHost() = default;
};

class DirectCalls {
public:
    /// Claims a doorbell in the process pool's shared mapping when at::init()
    /// has run; without one the loop sleeps on a doorbell of its own and
    /// makes no direct calls.
    DirectCalls();
    ~DirectCalls();
    DirectCalls(const DirectCalls&) = delete;
    DirectCalls& operator=(const DirectCalls&) = delete;

    /// The calling thread's, while it runs a fiber loop; nullptr elsewhere.
    [[nodiscard]] static DirectCalls* current() noexcept;
    static void set_current(DirectCalls* calls) noexcept;

    [[nodiscard]] Doorbell& bell() noexcept { return *bell_; }
    /// True when direct calls can be made (a shared doorbell, a server running).
    [[nodiscard]] bool open() const noexcept { return shared_bell_ != no_bell && serving_ && !closing_; }

    /// Sends `call` of `task` (started, its record updated) to the worker of
    /// the borrowed thread. Any failure ends through `host`.
    void start(DirectHost& host, WorkerProcesses& workers, TaskBase* task, ThreadPool::Sleeper* borrowed,
               const MpCall& call) noexcept;

    /// The server fiber's body: completes calls as their answers arrive,
    /// until close() and every call has ended.
    void serve();
    /// Makes serve() return once the calls in flight have ended.
    void close() noexcept { closing_ = true; }

    /// For the scheduler: the parked server fiber if it has work, taken off
    /// its park (the caller makes it ready); nullptr otherwise.
    [[nodiscard]] boost::fibers::context* wake_server() noexcept;

private:
    struct Call;
    [[nodiscard]] bool has_work() const noexcept;
    void complete_ready();
    /// Completes calls_[i] if its answer is in (it is then replaced by the
    /// last call); false if it is still running.
    bool try_complete(std::size_t i) noexcept;
    /// `error`: the result could not be decoded (null when it was).
    void end(Call& call, std::exception_ptr error) noexcept;

    Doorbell own_bell_;
    Doorbell* bell_ = &own_bell_;
    std::uint32_t shared_bell_ = no_bell;
    std::vector<std::unique_ptr<Call>> calls_;  // in flight
    std::vector<std::unique_ptr<Call>> spare_;  // ended, kept for reuse
    boost::fibers::context* parked_ = nullptr;
    bool serving_ = false;
    bool closing_ = false;
};

}  // namespace atasker::detail
