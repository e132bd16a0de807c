#include "fiber/direct_calls.hpp"

#include <utility>

#include <boost/fiber/context.hpp>

#include <atasker/init.hpp>

#include "process/shm_slots.hpp"
#include "process/zygote.hpp"

namespace atasker::detail {

DirectCalls::DirectCalls() {
    if (!initialized()) return;
    shared_bell_ = runtime_slots().claim_doorbell();
    if (shared_bell_ != no_bell) bell_ = &runtime_slots().doorbell(shared_bell_);
}

DirectCalls::~DirectCalls() {
    if (shared_bell_ != no_bell) runtime_slots().release_doorbell(shared_bell_);
}

void DirectCalls::start(ProcessLane& lane, WorkerProcesses& workers, std::size_t slot, const MpCall& call) noexcept {
    std::unique_ptr<Call> c;
    try {
        if (spare_.empty()) {
            c = std::make_unique<Call>();
        } else {
            c = std::move(spare_.back());
            spare_.pop_back();
        }
        calls_.reserve(calls_.size() + 1);  // nothing can fail once the request is sent
    } catch (...) {
        lane.carry_again(call.task, slot);
        return;
    }
    c->lane = &lane;
    c->call.prepare(workers, slot, call);
    switch (c->call.send(shared_bell_)) {
        case ProcessCall::Sent::no_worker:  // it died since its last call: a lane thread starts a fresh one
            lane.carry_again(call.task, slot);
            return;
        case ProcessCall::Sent::failed: lane.end_here(call.task, slot, -1.0); return;
        case ProcessCall::Sent::sent: break;
    }
    calls_.push_back(std::move(c));
    // Where the loop shares its CPU with the worker, the worker usually ran
    // within the post and has answered already: completing here fulfils the
    // future before the fiber waits on it, with no switch to the server.
    (void)try_complete(calls_.size() - 1);
}

bool DirectCalls::has_work() const noexcept {
    if (closing_ && calls_.empty()) return true;
    for (const auto& c : calls_)
        if (c->call.answered()) return true;
    return false;
}

boost::fibers::context* DirectCalls::wake_server() noexcept {
    if (parked_ == nullptr || !has_work()) return nullptr;
    return std::exchange(parked_, nullptr);
}

void DirectCalls::serve() {
    serving_ = true;
    for (;;) {
        complete_ready();
        if (closing_ && calls_.empty()) break;
        if (!has_work()) {
            // Parked outside any wait queue: the scheduler makes it ready
            // (wake_server) once an answer or the close arrives.
            parked_ = boost::fibers::context::active();
            parked_->suspend();
        }
    }
    serving_ = false;
}

void DirectCalls::complete_ready() {
    for (std::size_t i = 0; i < calls_.size();)
        if (!try_complete(i)) ++i;
}

bool DirectCalls::try_complete(std::size_t i) noexcept {
    Call& c = *calls_[i];
    // Without blocking: false at once when no answer has been posted.
    if (!c.call.receive(false)) return false;
    std::unique_ptr<Call> ended = std::move(calls_[i]);
    calls_[i] = std::move(calls_.back());
    calls_.pop_back();
    ProcessCall& pc = ended->call;
    TaskBase* task = pc.call().task;
    if (pc.never_reached()) {
        ended->lane->carry_again(task, pc.slot());
    } else {
        pc.store(1);
        ended->lane->end_here(task, pc.slot(), pc.progress());
    }
    try {
        spare_.push_back(std::move(ended));
    } catch (...) {
        // Not kept for reuse: freed here.
    }
    return true;
}

}  // namespace atasker::detail
