// Retries and thread deadlines: what a task's RunPolicy makes the
// supervisor do when one of its runs starts and ends.
//
// A failed run with retries left does not end the task: complete() finds it
// here, the task goes back to `delayed` (holding no slot), and a timer queues
// it again after the retry delay, as it does a task put with a delay. A
// thread task's deadline is a timer started with each run; at the deadline
// the run is asked to stop through its stop token, and whatever it returns
// then, it ends as TimeoutError.

#include <algorithm>
#include <string>
#include <utility>

#include <fmt/chrono.h>

#include <atasker/error.hpp>
#include <atasker/log.hpp>

#include "core/supervisor_impl.hpp"

namespace atasker {

using detail::Record;
using detail::RunPolicy;
using detail::TaskBase;

namespace {

std::exception_ptr timeout_error(TaskId id, std::chrono::nanoseconds timeout) noexcept {
    try {
        return std::make_exception_ptr(TimeoutError(
            fmt::format("thread task {} was still running when its timeout of {} passed; it was asked to stop", id,
                        std::chrono::duration_cast<std::chrono::milliseconds>(timeout))));
    } catch (...) {  // no memory for the message
        return std::current_exception();
    }
}

}  // namespace

void TaskSupervisor::Impl::set_run_policy(Record& r, TaskType type, const TaskOptions& o) {
    timers.start();  // a run's deadline or a retry then never waits for a thread to start
    RunPolicy& p = table.set_policy(r);
    p.retries_left = o.retries;
    p.next_delay = std::min(o.retry_delay, RunPolicy::longest);
    if (type == TaskType::thread) p.timeout = std::min(o.timeout, RunPolicy::longest);  // a process task's is its own
}

void TaskSupervisor::Impl::start_run(TaskBase* task, Record& r) noexcept {
    RunPolicy& p = *table.policy(r);
    p.timed_out = false;
    if (p.timeout.count() == 0) return;
    try {
        p.deadline_timer = timers.schedule(detail::Timers::Clock::now() + p.timeout, &on_deadline, this, task->id);
    } catch (...) {
        p.deadline_timer = 0;
        mutex.defer_error(fmt::format("thread task {} runs without its timeout: no memory for its timer", task->id));
    }
}

bool TaskSupervisor::Impl::retry_after_run(TaskBase* task, Record& r) noexcept {
    RunPolicy& p = *table.policy(r);
    if (p.deadline_timer != 0) {
        // Not cancel(): its callback may be waiting for the mutex held here.
        // One that runs anyway finds its timer is no longer the run's.
        (void)timers.drop(p.deadline_timer);
        p.deadline_timer = 0;
    }
    if (p.timed_out && !p.cancel_asked) task->set_error(timeout_error(task->id, p.timeout), TaskStatus::failed);
    if (task->end_status() != TaskStatus::failed || p.retries_left == 0 || p.cancel_asked || !active || stopping)
        return false;
    --p.retries_left;
    ++p.failed;
    r.status = TaskStatus::delayed;
    ++delayed;
    if (log_enabled(LogLevel::warning)) {
        try {
            mutex.defer_warning(fmt::format("task {} '{}' ({}) failed on attempt {}, runs again in {}: {}", task->id,
                                            table.name(r), r.type, p.failed,
                                            std::chrono::duration_cast<std::chrono::milliseconds>(p.next_delay),
                                            detail::describe(task->error())));
        } catch (...) {  // no memory for the line: the retry goes on without it
        }
    }
    if (p.stop_in_flight) {
        // The deadline's stop request is still being made: the run's stop
        // source must not be replaced under it. on_deadline() retries.
        p.retry_waiting = true;
        return true;
    }
    schedule_retry(task, r, p);
    return true;
}

void TaskSupervisor::Impl::schedule_retry(TaskBase* task, Record& r, RunPolicy& p) noexcept {
    task->prepare_retry();
    task->clear_error();
    p.timed_out = false;
    const std::chrono::nanoseconds delay = p.next_delay;
    p.next_delay = RunPolicy::doubled(delay);
    std::uint64_t timer = 0;
    if (delay.count() > 0) {
        try {
            timer = timers.schedule(detail::Timers::Clock::now() + delay, &on_delay_end, this, task->id);
        } catch (...) {  // no memory for the timer: the retry runs without its delay
        }
    }
    if (timer != 0) return;
    --delayed;
    enqueue(task, r, detail::wall_now());
    lane(task->type).wake();
}

void TaskSupervisor::Impl::on_deadline(void* self, std::uint64_t id) noexcept {
    auto* impl = static_cast<Impl*>(self);
    const std::uint64_t timer = impl->timers.running();
    TaskBase* task = nullptr;
    {
        std::lock_guard lock(impl->mutex);
        Record* r = impl->table.find(id);
        RunPolicy* p = r != nullptr && r->status == TaskStatus::started ? impl->table.policy(*r) : nullptr;
        if (p == nullptr || p->deadline_timer != timer) return;  // the run it was for has ended
        p->deadline_timer = 0;
        p->timed_out = true;
        p->stop_in_flight = true;
        task = r->task;
        task->add_ref();
    }
    // Without the mutex: stop callbacks registered by the task run here.
    (void)impl->lane(task->type).request_stop(task);
    {
        std::lock_guard lock(impl->mutex);
        Record* r = impl->table.find(id);
        if (r != nullptr && r->live_task() == task) {
            RunPolicy& p = *impl->table.policy(*r);
            p.stop_in_flight = false;
            if (std::exchange(p.retry_waiting, false) && r->status == TaskStatus::delayed)
                impl->schedule_retry(task, *r, p);
        }
    }
    task->release();
}

}  // namespace atasker
