#include "process/process_call.hpp"

#include <utility>

#include <fmt/chrono.h>

#include <atasker/error.hpp>

namespace atasker::detail {

void ProcessCall::prepare(WorkerProcesses& workers, std::size_t slot, const MpCall& call) noexcept {
    workers_ = &workers;
    slot_ = slot;
    call_ = call;
    mode_ = call.fail_item != nullptr ? Mode::chunk : Mode::single;
    request_.task_index = call.task_index;
    request_.tag = call.task->id;
    request_.outcome = {};
    flight_ = {};
    next_ = 0;
    if (!is_chunk()) return;
    try {
        items_.clear();
        items_.reserve(call.items);
        for (std::size_t i = 0; i < call.items; ++i) items_.push_back(Item{Write{&call_, i}, Read{&call_, i, false}});
        make_requests();
    } catch (...) {  // no memory for the requests: the chunk fails as a whole
        batch_.clear();
        call_.task->set_error(std::current_exception());
    }
}

void ProcessCall::prepare_riders(WorkerProcesses& workers, std::size_t slot, std::span<const MpCall> calls) noexcept {
    workers_ = &workers;
    slot_ = slot;
    call_ = calls.front();
    mode_ = Mode::riders;
    flight_ = {};
    next_ = 0;
    try {
        riders_.assign(calls.begin(), calls.end());  // items_ point into it: never resized below
        items_.clear();
        items_.reserve(riders_.size());
        for (const MpCall& c : riders_) items_.push_back(Item{Write{&c, 0}, Read{&c, 0, false}});
        make_requests();
    } catch (...) {  // no memory for the requests: every task fails
        batch_.clear();
        const std::exception_ptr e = std::current_exception();
        for (const MpCall& c : calls) c.task->set_error(e);
    }
}

void ProcessCall::make_requests() {
    batch_.clear();
    batch_.reserve(items_.size());
    for (const Item& item : items_) {
        const MpCall& c = *item.write.call;
        batch_.push_back(CallRequest{.task_index = c.task_index, .write_args = item.write, .read_result = item.read,
                                     .tag = c.task->id, .outcome = {}});
    }
}

void ProcessCall::Read::operator()(ByteReader& in) const {
    if (alone) {
        call->read_result(call->context, item, in);  // a failure becomes the flight's decode_error
        return;
    }
    try {
        call->read_result(call->context, item, in);
    } catch (...) {  // this item's result only: the others stand
        if (call->fail_item != nullptr) {
            call->fail_item(call->context, item, std::current_exception());
        } else {
            call->task->set_error(std::current_exception());
        }
    }
}

std::span<CallRequest> ProcessCall::unsent() noexcept {
    if (!itemized()) return {&request_, 1};
    return std::span(batch_).subspan(next_);
}

void ProcessCall::fail_item(std::size_t item, std::exception_ptr error, TaskStatus status) noexcept {
    if (is_chunk()) {
        call_.fail_item(call_.context, item, std::move(error));
    } else {
        riders_[item].task->set_error(std::move(error), status);
    }
}

ProcessCall::Sent ProcessCall::send(std::uint32_t bell, bool claimable) noexcept {
    const std::span<CallRequest> requests = unsent();
    for (CallRequest& r : requests) r.outcome = {};
    advanced_ = false;
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (call_.timeout.count() > 0) deadline = std::chrono::steady_clock::now() + call_.timeout;
    try {
        std::optional<WorkerProcesses::Flight> flight = workers_->begin_batch(slot_, requests, deadline, bell, claimable);
        if (!flight) return Sent::no_worker;  // it died since its last call
        flight_ = std::move(*flight);
        return Sent::sent;
    } catch (...) {
        if (!workers_->running(slot_)) return Sent::no_worker;  // it died just now
        // The (first) arguments could not be encoded, or found no room in /dev/shm.
        if (itemized()) {
            fail_item(next_++, std::current_exception());
        } else {
            call_.task->set_error(std::current_exception());
        }
        return Sent::failed;
    }
}

bool ProcessCall::receive(bool block) noexcept {
    const std::span<CallRequest> requests = unsent();
    try {
        while (!workers_->advance_batch(slot_, requests, flight_, block))
            if (!block) return false;
    } catch (...) {
        if (!flight_.decode_error) flight_.decode_error = std::current_exception();
        request_.outcome.kind = CallOutcome::Kind::not_run;
    }
    if (itemized()) absorb();
    return true;
}

void ProcessCall::absorb() noexcept {
    if (std::exception_ptr e = std::exchange(flight_.decode_error, nullptr)) {
        // Not an item's result (each item's is caught where it is read):
        // the exchange itself failed, and no outcome can be trusted.
        for (; next_ < batch_.size(); ++next_) fail_item(next_, e);
        advanced_ = true;
        return;
    }
    for (; next_ < batch_.size(); ++next_) {
        const CallOutcome& o = batch_[next_].outcome;
        using Kind = CallOutcome::Kind;
        if (o.kind == Kind::ok) {
            advanced_ = true;
            continue;
        }
        if (o.kind == Kind::not_run || ((o.kind == Kind::died || o.kind == Kind::killed) && !o.started)) return;
        advanced_ = true;
        std::exception_ptr error;
        try {
            error = failure_of(o, call_of(next_));
        } catch (...) {  // no memory for the message
            error = std::current_exception();
        }
        const bool canceled = o.kind == Kind::killed || o.kind == Kind::canceled;
        fail_item(next_, error, canceled ? TaskStatus::canceled : TaskStatus::failed);
        if (canceled && is_chunk()) {
            // The chunk task was canceled: nothing of it runs any more.
            // (A rider's cancel is its own; the riders after it go on.)
            for (++next_; next_ < batch_.size(); ++next_) fail_item(next_, error);
            return;
        }
    }
}

void ProcessCall::fail_rest(const std::exception_ptr& error) noexcept {
    if (!itemized()) {
        call_.task->set_error(error);
        return;
    }
    for (; next_ < batch_.size(); ++next_) fail_item(next_, error);
}

bool ProcessCall::never_reached() const noexcept {
    if (itemized()) return !advanced_;
    if (flight_.decode_error) return false;
    const CallOutcome& o = request_.outcome;
    return o.kind == CallOutcome::Kind::not_run || (o.kind == CallOutcome::Kind::killed && !o.started) ||
           (o.kind == CallOutcome::Kind::died && !o.started);
}

void ProcessCall::store(int carries) noexcept {
    if (itemized()) {
        for (; next_ < batch_.size(); ++next_) {
            std::exception_ptr error;
            try {
                error = std::make_exception_ptr(Error(fmt::format("process task {} could not reach a worker process "
                                                                  "after {} tries",
                                                                  call_of(next_).task->id, carries)));
            } catch (...) {
                error = std::current_exception();
            }
            fail_item(next_, error);
        }
        return;
    }
    std::exception_ptr error = std::exchange(flight_.decode_error, nullptr);
    TaskStatus status = TaskStatus::failed;
    try {
        if (!error && never_reached()) {
            error = std::make_exception_ptr(Error(fmt::format(
                "process task {} could not reach a worker process after {} tries", call_.task->id, carries)));
        } else if (!error) {
            error = failure_of(request_.outcome, call_);
            const CallOutcome::Kind kind = request_.outcome.kind;
            if (kind == CallOutcome::Kind::killed || kind == CallOutcome::Kind::canceled) status = TaskStatus::canceled;
        }
    } catch (...) {  // no memory for the message
        error = std::current_exception();
    }
    if (error) call_.task->set_error(std::move(error), status);
}

std::exception_ptr failure_of(const CallOutcome& o, const MpCall& call) {
    const TaskId id = call.task->id;
    switch (o.kind) {
        case CallOutcome::Kind::ok: return nullptr;
        case CallOutcome::Kind::remote_error:
        case CallOutcome::Kind::died: return std::make_exception_ptr(RemoteError(o.error_type, o.error_message));
        case CallOutcome::Kind::timed_out:
            return std::make_exception_ptr(TimeoutError(
                fmt::format("process task {} ran longer than its timeout of {}; its worker process was killed", id,
                            std::chrono::duration_cast<std::chrono::milliseconds>(call.timeout))));
        case CallOutcome::Kind::killed:
            return std::make_exception_ptr(CanceledError(
                fmt::format("process task {} was canceled while running; its worker process was killed", id)));
        case CallOutcome::Kind::canceled:
            return std::make_exception_ptr(
                CanceledError(fmt::format("process task {} was canceled before its worker process started it", id)));
        case CallOutcome::Kind::not_run: break;
    }
    return std::make_exception_ptr(Error(fmt::format("process task {} never reached a worker process", id)));
}

}  // namespace atasker::detail
