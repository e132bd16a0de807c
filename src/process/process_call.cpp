#include "process/process_call.hpp"

#include <utility>

#include <fmt/chrono.h>

#include <atasker/error.hpp>

namespace atasker::detail {

void ProcessCall::prepare(WorkerProcesses& workers, std::size_t slot, const MpCall& call) noexcept {
    workers_ = &workers;
    slot_ = slot;
    call_ = call;
    request_.task_index = call.task_index;
    request_.tag = call.task->id;
    request_.outcome = {};
    flight_ = {};
}

ProcessCall::Sent ProcessCall::send(std::uint32_t bell) noexcept {
    request_.outcome = {};
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (call_.timeout.count() > 0) deadline = std::chrono::steady_clock::now() + call_.timeout;
    try {
        std::optional<WorkerProcesses::Flight> flight =
            workers_->begin_batch(slot_, std::span(&request_, 1), deadline, bell);
        if (!flight) return Sent::no_worker;  // it died since its last call
        flight_ = std::move(*flight);
        return Sent::sent;
    } catch (...) {
        if (!workers_->running(slot_)) return Sent::no_worker;  // it died just now
        call_.task->set_error(std::current_exception());  // the arguments do not fit, or could not be encoded
        return Sent::failed;
    }
}

bool ProcessCall::receive(bool block) noexcept {
    try {
        while (!workers_->advance_batch(slot_, std::span(&request_, 1), flight_, block))
            if (!block) return false;
    } catch (...) {
        if (!flight_.decode_error) flight_.decode_error = std::current_exception();
        request_.outcome.kind = CallOutcome::Kind::not_run;
    }
    return true;
}

bool ProcessCall::never_reached() const noexcept {
    if (flight_.decode_error) return false;
    const CallOutcome& o = request_.outcome;
    return o.kind == CallOutcome::Kind::not_run || (o.kind == CallOutcome::Kind::killed && !o.started) ||
           (o.kind == CallOutcome::Kind::died && !o.started);
}

void ProcessCall::store(int carries) noexcept {
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
        case CallOutcome::Kind::canceled:
            return std::make_exception_ptr(CanceledError(
                fmt::format("process task {} was canceled while running; its worker process was killed", id)));
        case CallOutcome::Kind::not_run: break;
    }
    return std::make_exception_ptr(Error(fmt::format("process task {} never reached a worker process", id)));
}

}  // namespace atasker::detail
