#pragma once
// DirectCalls: process tasks a fiber loop carries to a worker itself. When a
// fiber of an aloop awaits co_mp_apply and the process lane can start the
// task at once, the lane lends the loop an idle worker (InlineCarrier): the
// loop sends the request, the worker rings the loop's doorbell, and the
// loop's server fiber completes the task. The loop's thread sleeps on that
// doorbell (LoopScheduler), so an answer costs two context switches, as a
// bare semaphore ping-pong does, instead of four through a pool thread.
// Everything here runs on the loop's thread.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <atasker/detail/mp_call.hpp>

#include "process/process_call.hpp"
#include "process/process_lane.hpp"
#include "process/shm_slots.hpp"
#include "sync/doorbell.hpp"

namespace boost::fibers {
class context;
}

namespace atasker::detail {

class DirectCalls final : public InlineCarrier {
public:
    /// Claims a doorbell in the process pool's shared mapping when at::init()
    /// has run; without one the loop sleeps on a doorbell of its own and
    /// makes no direct calls.
    DirectCalls();
    ~DirectCalls();
    DirectCalls(const DirectCalls&) = delete;
    DirectCalls& operator=(const DirectCalls&) = delete;

    [[nodiscard]] Doorbell& bell() noexcept { return *bell_; }

    // InlineCarrier
    /// True when direct calls can be made (a shared doorbell, a server running).
    [[nodiscard]] bool open() const noexcept override { return shared_bell_ != no_bell && serving_ && !closing_; }
    /// Sends `call` on the claimed `slot`; any failure ends through `lane`.
    void start(ProcessLane& lane, WorkerProcesses& workers, std::size_t slot, const MpCall& call) noexcept override;

    /// The server fiber's body: completes calls as their answers arrive,
    /// until close() and every call has ended.
    void serve();
    /// Makes serve() return once the calls in flight have ended.
    void close() noexcept { closing_ = true; }

    /// For the scheduler: the parked server fiber if it has work, taken off
    /// its park (the caller makes it ready); nullptr otherwise.
    [[nodiscard]] boost::fibers::context* wake_server() noexcept;

private:
    struct Call {
        ProcessLane* lane = nullptr;
        ProcessCall call;
    };
    [[nodiscard]] bool has_work() const noexcept;
    void complete_ready();
    /// Completes calls_[i] if its answer is in (it is then replaced by the
    /// last call); false if it is still running.
    bool try_complete(std::size_t i) noexcept;

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
