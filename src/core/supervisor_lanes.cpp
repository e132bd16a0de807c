// What lanes call back into: take the next task, record how one ended,
// queue again one that never ran, settle; and the wake-ups sent after the
// mutex is released.

#include <string>
#include <utility>

#include <atasker/log.hpp>

#include "core/supervisor_impl.hpp"
#include "core/task_outcome.hpp"

namespace atasker {

using detail::Record;
using detail::TaskBase;
using detail::WallNanos;

detail::Job TaskSupervisor::Impl::take(detail::Lane& from, std::int64_t now) noexcept {
    TaskBase* t = from.admission().pop();
    if (t == nullptr) return {};
    Record* r = table.find(t->id);
    r->status = TaskStatus::started;
    r->started = now;
    return {.task = t, .progress = &r->progress, .ticket = 0};
}

std::string TaskSupervisor::Impl::complete(TaskBase* task, std::int64_t now) {
    auto [status, error] = detail::outcome_of(*task);
    lane(task->type).admission().finished(task->priority());
    return finish_record(task, *table.find(task->id), status, std::move(error), now);
}

void TaskSupervisor::Impl::requeue(TaskBase* task) noexcept {
    lane(task->type).admission().finished(task->priority());
    Record& r = *table.find(task->id);
    enqueue(task, r, r.queued);
}

std::string TaskSupervisor::Impl::finish_record(TaskBase* task, Record& r, TaskStatus status, std::string error,
                                                WallNanos now) {
    std::string line;
    if (status == TaskStatus::failed && log_enabled(LogLevel::error))
        line = fmt::format("task {} '{}' ({}) failed: {}", task->id, table.name(r), r.type, error);
    r.status = status;
    r.completed = now;  // in place of the task pointer: the caller holds the reference
    if (status == TaskStatus::completed) r.progress.store(1.0F, std::memory_order_relaxed);
    if (!error.empty()) table.set_error(r, std::move(error));
    table.finished(task->id, now);
    if (stopping && drained()) state_cv.notify_all();
    return line;
}

void TaskSupervisor::Impl::settle(TaskBase* task, const std::string& log_line) noexcept {
    task->mark_done();
    task->run_callback();
    if (!log_line.empty()) log_message(LogLevel::error, log_line);
    task->release();
}

void TaskSupervisor::Impl::unlock_and_send(std::mutex& raw) noexcept {
    detail::Wakeups wakeups;
    for (const auto& l : lanes) l->take_wakeups(wakeups);
    const std::size_t lost = std::exchange(thresholds_lost, 0);
    raw.unlock();
    wakeups.send();
    if (lost > 0) {
        try {
            log(LogLevel::error, "{} task(s) queued without their wait-time thresholds: the timers could not take them",
                lost);
        } catch (...) {  // no memory for the message either
        }
    }
}

}  // namespace atasker
