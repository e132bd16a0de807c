// What lanes call back into: take the next task, record how one ended,
// queue again one that never ran, settle.

#include <string>
#include <utility>

#include <atasker/log.hpp>

#include "core/supervisor_impl.hpp"

namespace atasker {

using detail::Record;
using detail::TaskBase;
using detail::WallNanos;

detail::Job TaskSupervisor::Impl::take(detail::Lane& from, std::int64_t now) noexcept {
    mutex.drain_inbox();  // the most urgent task may have come through the inbox
    return start_job(from.admission().pop(), now);
}

detail::Job TaskSupervisor::Impl::take_rider(detail::Lane& from, std::int64_t now) noexcept {
    return start_job(from.admission().pop_rider(), now);
}

detail::Job TaskSupervisor::Impl::start_job(TaskBase* t, std::int64_t now) noexcept {
    if (t == nullptr) return {};
    Record* r = table.find(t->id);
    r->status = TaskStatus::started;
    r->started = now;
    if (r->has_policy) [[unlikely]] start_run(t, *r);
    return {.task = t, .progress = &r->progress, .ticket = 0};
}

bool TaskSupervisor::Impl::complete(TaskBase* task, std::int64_t now, std::string& log_line) {
    detail::Lane& from = lane(task->type);
    from.admission().finished(task->priority());
    Record& r = *table.find(task->id);
    if (r.has_policy && retry_after_run(task, r)) [[unlikely]] return false;
    finish_record(task, r, now, log_line);
    return true;
}

void TaskSupervisor::Impl::note_worker(TaskBase* task, std::string worker, unsigned deliveries) noexcept {
    Record* r = table.find(task->id);
    if (r == nullptr || r->live_task() != task) return;  // ended meanwhile
    try {
        table.set_worker(*r, std::move(worker), deliveries);
    } catch (...) {  // no memory: the record says less
    }
}

void TaskSupervisor::Impl::requeue(TaskBase* task) noexcept {
    detail::Lane& to = lane(task->type);
    to.admission().finished(task->priority());
    Record& r = *table.find(task->id);
    enqueue(task, r, r.queued);
    to.wake();
}

void TaskSupervisor::Impl::finish_record(TaskBase* task, Record& r, WallNanos now, std::string& log_line) {
    const TaskStatus status = task->end_status();
    if (status == TaskStatus::completed) {
        r.progress.store(1.0F, std::memory_order_relaxed);
    } else {
        std::string error = detail::describe(task->error());
        // After retries, the record and the line say how many runs failed.
        const detail::RunPolicy* p = table.policy(r);
        const unsigned attempts = p != nullptr && p->failed > 0 ? p->failed + (r.started_at() != 0 ? 1U : 0U) : 0U;
        if (status == TaskStatus::failed && log_enabled(LogLevel::error))
            log_line = attempts > 1 ? fmt::format("task {} '{}' ({}) failed after {} attempts: {}", task->id,
                                                  table.name(r), r.type, attempts, error)
                                    : fmt::format("task {} '{}' ({}) failed: {}", task->id, table.name(r), r.type, error);
        if (attempts > 1) error += fmt::format(" (after {} attempts)", attempts);
        table.set_error(r, std::move(error));
    }
    r.status = status;
    r.completed = now;  // in place of the task pointer: the caller holds the reference
    table.finished(task->id, now);
    if (stopping && drained()) state_cv.notify_all();
}

void TaskSupervisor::Impl::settle(TaskBase* task, const std::string& log_line) noexcept {
    task->mark_done();
    task->run_callback();
    if (!log_line.empty()) task->report_failure(log_line);
    task->release();
}

}  // namespace atasker
