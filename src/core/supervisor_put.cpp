// Puts, the inbox, queueing and cancel.

#include <string>
#include <utility>

#include <atasker/error.hpp>

#include "core/put_lock.hpp"
#include "core/supervisor_impl.hpp"

namespace atasker {

using detail::Record;
using detail::TaskBase;
using detail::WallNanos;
using detail::wall_now;

namespace {

bool known_priority(Priority p) noexcept {
    return p == Priority::critical || p == Priority::high || p == Priority::normal || p == Priority::low;
}

}  // namespace

TaskId TaskSupervisor::Impl::put(TaskBase* task, const TaskOptions& o) {
    // Until the record holds it, the reference handed over must not leak.
    struct ReleaseUnlessKept {
        TaskBase* task;
        ~ReleaseUnlessKept() {
            if (task != nullptr) task->release();
        }
    } guard{task};
    if (!known_priority(o.priority))
        throw Error(fmt::format("unknown priority {}; use Priority::critical, high, normal or low",
                                static_cast<int>(o.priority)));
    if (o.delay.count() < 0) throw Error("a task's delay must not be negative; pass 0 to queue it at once");
    if (o.timeout.count() < 0) throw Error("a task's timeout must not be negative; pass 0 for no limit");
    if (o.retry_delay.count() < 0)
        throw Error("a task's retry_delay must not be negative; pass 0 to retry at once");
    task->rank = static_cast<std::uint8_t>(priority_rank(o.priority));
    const WallNanos now = wall_now();
    // A thread task with nothing to set up under the mutex goes to the
    // inbox, with an id reserved for it. Not a critical one: it may have to
    // grow a saturated pool at once. Not with wait thresholds: their timers
    // start when the task is queued. Not with retries or a deadline: their
    // RunPolicy goes beside the record.
    TaskId reserved = 0;
    if (task->type == TaskType::thread && o.priority != Priority::critical && o.delay.count() == 0 &&
        o.name.empty() && o.retries == 0 && o.timeout.count() == 0 &&
        !has_wait_timeouts.load(std::memory_order_relaxed)) {
        reserved = reserved_ids.take();
        if (reserved != 0) {
            task->id = reserved;
            task->put_time = now;
            guard.task = nullptr;  // the inbox's from here
            if (mutex.push(task)) return reserved;
            guard.task = task;  // the inbox is closed: the supervisor is stopped
        }
    }
    std::string name = o.name;  // copied before the lock is taken
    detail::PutLock put_lock(mutex, puts_in_flight);
    auto& held = put_lock.lock();
    mutex.drain_inbox();  // after this thread's earlier puts through the inbox (FIFO)
    if (reserved != 0) table.unreserve(reserved);
    if (!active)
        throw Error(ever_started ? "task supervisor is stopped; call start() before putting tasks"
                                 : "task supervisor is not started; call start() before putting tasks");
    detail::Lane& to = lane(task->type);
    if (const char* why = to.refusal()) throw Error(why);
    Record* r = nullptr;
    const TaskId id = table.insert(r);
    try {
        // What can still fail (memory, the timer thread's start) comes before
        // the task is linked: a put that throws leaves no record behind. The
        // delay's timer cannot fire before the record says delayed: its
        // callback takes the mutex held here.
        table.set_name(*r, std::move(name));
        if (o.retries > 0 || (task->type == TaskType::thread && o.timeout.count() > 0))
            set_run_policy(*r, task->type, o);
        if (o.delay.count() > 0) timers.schedule(detail::Timers::Clock::now() + o.delay, &on_delay_end, this, id);
    } catch (...) {
        table.erase(id);
        throw;
    }
    task->id = id;
    link_record(*r, task);
    guard.task = nullptr;
    r->queued = now;
    if (o.delay.count() > 0) {
        r->status = TaskStatus::delayed;
        ++delayed;
        return id;
    }
    // A task its lane can run on this thread at once (a fiber loop's process
    // call, a remote call to an idle lane): started here, as a lane thread
    // would.
    if (to.starts_here() && to.admission().may_start(task->rank)) {
        if (const auto job = to.start_here(task, &r->progress)) {
            to.admission().start(task->rank);
            r->status = TaskStatus::started;
            r->started = now;
            held.unlock();
            to.run_here(*job);
            return id;
        }
    }
    enqueue(task, *r, now);
    to.wake();
    return id;
}

void TaskSupervisor::Impl::queue_from_inbox(TaskBase* oldest) noexcept {
    // Lanes are woken once, after the whole batch is queued.
    std::uint32_t queued_to = 0;  // a bit per lane
    for (TaskBase* task = oldest; task != nullptr;) {
        TaskBase* next = task->next;
        task->next = nullptr;
        Record& r = table.publish(task->id);
        link_record(r, task);
        enqueue(task, r, task->put_time);
        queued_to |= 1U << static_cast<unsigned>(task->type);
        task = next;
    }
    for (std::size_t i = 0; i < lanes.size(); ++i)
        if ((queued_to & (1U << i)) != 0) lanes[i]->wake();
    refill_reserved_ids();
}

void TaskSupervisor::Impl::link_record(Record& r, TaskBase* task) noexcept {
    r.rank = task->rank;
    r.type = task->type;
    r.task = task;  // the supervisor's reference, until the task is settled
}

void TaskSupervisor::Impl::refill_reserved_ids() noexcept {
    reserved_ids.refill([this] { return table.reserve(); });
}

bool TaskSupervisor::Impl::hungry() const noexcept { return lane(TaskType::thread).hungry(); }

void TaskSupervisor::Impl::enqueue(TaskBase* task, Record& r, WallNanos now) noexcept {
    r.status = TaskStatus::queued;
    r.queued = now;
    detail::Lane& to = lane(task->type);
    r.queue_before = to.admission().push(task);
    if (wait_timeouts) schedule_wait_timeouts(task->id);
}

void TaskSupervisor::Impl::on_delay_end(void* self, std::uint64_t id) noexcept {
    auto* impl = static_cast<Impl*>(self);
    const WallNanos now = wall_now();
    std::unique_lock lock(impl->mutex);
    Record* r = impl->table.find(id);
    if (r == nullptr || r->status != TaskStatus::delayed) return;  // canceled meanwhile
    --impl->delayed;
    impl->enqueue(r->task, *r, now);
    impl->lane(r->type).wake();
}

void TaskSupervisor::Impl::cancel_locked(TaskBase* task, Record& r, WallNanos now, std::vector<TaskBase*>& to_settle) {
    r.started = 0;  // it held the queue's back link
    const detail::RunPolicy* p = table.policy(r);
    task->set_error(std::make_exception_ptr(CanceledError(
                        p != nullptr && p->failed > 0
                            ? fmt::format("task {} was canceled while it waited to run again", task->id)
                            : fmt::format("task {} was canceled before it started", task->id))),
                    TaskStatus::canceled);
    std::string no_line;  // a cancel is not logged
    finish_record(task, r, now, no_line);
    to_settle.push_back(task);
    begin_settle();  // by the caller, once the mutex is released
}

bool TaskSupervisor::Impl::cancel(TaskId id) {
    std::vector<TaskBase*> to_settle;
    TaskBase* running = nullptr;
    {
        std::lock_guard held(mutex);
        mutex.drain_inbox();  // a task put through the inbox can be canceled at once
        Record* r = table.find(id);
        if (r == nullptr || r->live_task() == nullptr) return false;
        TaskBase* t = r->task;
        switch (r->status) {
            case TaskStatus::queued:
                if (TaskBase* after = lane(t->type).admission().remove(t, r->queue_before); after != nullptr)
                    table.find(after->id)->queue_before = r->queue_before;
                cancel_locked(t, *r, wall_now(), to_settle);
                break;
            case TaskStatus::delayed:
                --delayed;  // its timer finds the record finished and does nothing
                cancel_locked(t, *r, wall_now(), to_settle);
                break;
            case TaskStatus::started:
                if (detail::RunPolicy* p = table.policy(*r)) p->cancel_asked = true;  // its retries go too
                running = t;
                running->add_ref();
                break;
            default: return false;
        }
    }
    if (running != nullptr) {
        // Outside the lock: stop callbacks registered by the task run here.
        const bool asked = lane(running->type).request_stop(running);
        running->release();
        return asked;
    }
    for (TaskBase* t : to_settle) {
        settle(t, {});
        end_settle();
    }
    return true;
}

}  // namespace atasker
