#include "process/put_calls.hpp"

#include <pthread.h>

#include <chrono>
#include <mutex>

#include <atasker/error.hpp>

#include "process/shm_slots.hpp"
#include "process/zygote.hpp"

namespace atasker::detail {

PutCalls::PutCalls(ProcessLane& lane, SupervisorMutex& mutex, WorkerProcesses& workers)
    : lane_(lane),
      mutex_(mutex),
      workers_(workers),
      open_(workers.slot_count(), 0),
      sent_(std::make_unique<std::atomic<bool>[]>(open_.size())) {
    calls_.reserve(open_.size());
    for (std::size_t k = 0; k < open_.size(); ++k) calls_.push_back(std::make_unique<ProcessCall>());
    bell_index_ = runtime_slots().claim_doorbell();
    if (bell_index_ == no_bell) throw Error("every doorbell of the process pool's shared mapping is taken");
    bell_ = &runtime_slots().doorbell(bell_index_);
    try {
        collector_ = std::thread([this] { collect(); });
    } catch (...) {
        runtime_slots().release_doorbell(bell_index_);
        throw;
    }
    pthread_setname_np(collector_.native_handle(), "atasker-answers");
}

PutCalls::~PutCalls() {
    {
        std::lock_guard lock(mutex_);
        quit_ = true;
    }
    ring(*bell_);
    collector_.join();
    runtime_slots().release_doorbell(bell_index_);
}

void PutCalls::opened(std::size_t slot) noexcept {
    workers_.unclaimable(slot);  // what an earlier call left there is not this one's
    sent_[slot].store(false, std::memory_order_relaxed);
    open_[slot] = 1;
}

void PutCalls::start(ProcessLane& lane, WorkerProcesses& workers, std::size_t slot, const MpCall& call) noexcept {
    ProcessCall& pc = *calls_[slot];
    pc.prepare(workers, slot, call);
    const ProcessCall::Sent sent = pc.send(bell_index_, true);
    if (sent == ProcessCall::Sent::sent) {
        // From here the collector may read `pc`. An answer that rang before
        // found the call not yet sent and was left: this thread ends it,
        // rather than ring the collector again (on one CPU the worker
        // often answers before the put gets the CPU back).
        sent_[slot].store(true, std::memory_order_seq_cst);
        if (!workers_.answer_posted(slot)) return;
        bool taken = false;
        {
            std::lock_guard lock(mutex_);
            taken = take_posted(slot);  // else the collector has it
        }
        if (taken) end(slot);
        return;
    }
    // Nothing was sent, so nobody can take the answer: ended here.
    {
        std::lock_guard lock(mutex_);
        open_[slot] = 0;
    }
    if (sent == ProcessCall::Sent::no_worker) {
        lane.carry_again(call.task, slot);  // it died since its last call: a lane thread starts a fresh one
    } else {
        lane.end_here(call.task, slot, -1.0);  // the error is stored
    }
    lane.put_call_ended();
}

bool PutCalls::take_posted(std::size_t slot) noexcept {
    if (open_[slot] == 0 || !sent_[slot].load(std::memory_order_seq_cst) || !workers_.answer_posted(slot)) return false;
    open_[slot] = 0;
    return true;
}

bool PutCalls::take_for_waiter(std::size_t slot) noexcept {
    if (open_[slot] == 0 || !sent_[slot].load(std::memory_order_acquire) || !workers_.claim_answer(slot)) return false;
    open_[slot] = 0;
    return true;
}

void PutCalls::end(std::size_t slot) noexcept {
    ProcessCall& pc = *calls_[slot];
    (void)pc.receive(true);
    TaskBase* task = pc.call().task;
    if (pc.never_reached()) {
        lane_.carry_again(task, slot);
    } else {
        pc.store(1);
        lane_.end_here(task, slot, pc.progress());
    }
    lane_.put_call_ended();
}

void PutCalls::collect() noexcept {
    std::vector<std::size_t> ready;
    ready.reserve(open_.size());  // noexcept below: never grows past it
    for (;;) {
        const std::uint32_t seen = bell_->rings.load(std::memory_order_seq_cst);
        {
            std::lock_guard lock(mutex_);
            for (std::size_t k = 0; k < open_.size(); ++k)
                if (take_posted(k)) ready.push_back(k);
            if (ready.empty() && quit_) return;
        }
        if (!ready.empty()) {
            for (const std::size_t k : ready) end(k);
            ready.clear();
            continue;  // more may have rung meanwhile
        }
        sleep_on(*bell_, seen, std::chrono::steady_clock::time_point::max());
    }
}

}  // namespace atasker::detail
