#include <atasker/supervisor.hpp>

#include <algorithm>
#include <cstring>
#include <thread>

#include <atasker/error.hpp>
#include <atasker/log.hpp>

#include "supervisor_impl.hpp"

namespace atasker {

using detail::Record;
using detail::TaskBase;
using detail::WallNanos;
using detail::wall_now;

namespace {

bool known_priority(Priority p) noexcept {
    return p == Priority::critical || p == Priority::high || p == Priority::normal || p == Priority::low;
}

std::unique_ptr<char[]> copy_name(const std::string& name) {
    if (name.empty()) return nullptr;
    auto out = std::make_unique<char[]>(name.size() + 1);
    std::memcpy(out.get(), name.c_str(), name.size() + 1);
    return out;
}

PoolOptions default_thread_pool() {
    PoolOptions o;
    o.pool_size = std::max(2U, std::thread::hardware_concurrency());
    return o;
}

const char* name_of(const Record& r) noexcept { return r.name ? r.name.get() : ""; }

}  // namespace

// ---------------------------------------------------------------- Impl

TaskSupervisor::Impl::Impl() : thread_options(default_thread_pool()) { thread_admission.configure(thread_options); }

TaskSupervisor::Impl::~Impl() = default;

TaskId TaskSupervisor::Impl::put(TaskBase* task, const TaskOptions& o) {
    if (!known_priority(o.priority))
        throw Error(fmt::format("unknown priority {}; use Priority::critical, high, normal or low",
                                static_cast<int>(o.priority)));
    if (o.delay.count() < 0) throw Error("a task's delay must not be negative; pass 0 to queue it at once");
    auto name = copy_name(o.name);
    const WallNanos now = wall_now();
    std::lock_guard lock(mutex);
    if (!active)
        throw Error(ever_started ? "task supervisor is stopped; call start() before putting tasks"
                                 : "task supervisor is not started; call start() before putting tasks");
    Record* r = nullptr;
    const TaskId id = table.insert(r);
    task->id = id;
    task->priority = o.priority;
    task->add_ref();  // the supervisor's reference, until the task is settled
    r->task = task;
    r->type = task->type;
    r->priority = o.priority;
    r->name = std::move(name);
    r->queued = now;
    if (o.delay.count() > 0) {
        r->status = TaskStatus::delayed;
        ++delayed;
        timers.schedule(detail::Timers::Clock::now() + o.delay, &on_delay_end, this, id);
    } else {
        enqueue(task, *r, now);
    }
    return id;
}

void TaskSupervisor::Impl::enqueue(TaskBase* task, Record& r, WallNanos now) {
    r.status = TaskStatus::queued;
    r.queued = now;
    thread_admission.push(task);
    if (wait_timeouts) schedule_wait_timeouts(task->id);
    wake_thread_pool();
}

void TaskSupervisor::Impl::wake_thread_pool() {
    // Threads already woken or starting will each take one of the startable tasks.
    const std::size_t n = thread_admission.startable(0);
    const std::size_t pending = thread_pool.pending();
    if (n > pending) thread_pool.wake(n - pending, thread_admission.critical_waiting());
}

detail::ThreadPool::Host::Taken TaskSupervisor::Impl::take_thread_task() {
    TaskBase* t = thread_admission.pop();
    if (t == nullptr) return {};
    Record* r = table.find(t->id);
    r->status = TaskStatus::started;
    r->started = wall_now();
    return {t, &r->progress};
}

std::string TaskSupervisor::Impl::complete_thread_task(TaskBase* task, TaskStatus status, std::string error) {
    thread_admission.finished(task->priority);
    return finish_record(task, *table.find(task->id), status, std::move(error), wall_now());
}

std::string TaskSupervisor::Impl::finish_record(TaskBase* task, Record& r, TaskStatus status, std::string error,
                                                WallNanos now) {
    std::string line;
    if (status == TaskStatus::failed && log_enabled(LogLevel::error))
        line = fmt::format("task {} '{}' ({}) failed: {}", task->id, name_of(r), r.type, error);
    r.status = status;
    r.completed = now;
    if (status == TaskStatus::completed) r.progress.store(1.0F, std::memory_order_relaxed);
    if (!error.empty()) r.error = std::make_unique<std::string>(std::move(error));
    r.task = nullptr;
    table.finished(task->id, now);
    if (stopping && drained()) state_cv.notify_all();
    return line;
}

void TaskSupervisor::Impl::settle_task(TaskBase* task, const std::string& log_line) noexcept {
    task->mark_done();
    task->run_callback();
    if (!log_line.empty()) log_message(LogLevel::error, log_line);
    task->release();
}

void TaskSupervisor::Impl::cancel_locked(TaskBase* task, Record& r, WallNanos now, std::vector<TaskBase*>& to_settle) {
    std::string message = fmt::format("task {} was canceled before it started", task->id);
    task->set_error(std::make_exception_ptr(CanceledError(message)));
    finish_record(task, r, TaskStatus::canceled, std::move(message), now);
    to_settle.push_back(task);
}

void TaskSupervisor::Impl::cancel_all_locked(std::vector<TaskBase*>& to_settle, std::vector<TaskBase*>& to_stop) {
    const WallNanos now = wall_now();
    for (TaskBase* t = thread_admission.take_all(); t != nullptr;) {
        TaskBase* next = t->next;
        t->next = nullptr;
        cancel_locked(t, *table.find(t->id), now, to_settle);
        t = next;
    }
    table.for_each([&](TaskId, const Record& r) {
        if (r.status == TaskStatus::started && r.task != nullptr) {
            r.task->add_ref();
            to_stop.push_back(r.task);
        }
    });
}

void TaskSupervisor::Impl::settle_all(std::vector<TaskBase*>& to_settle, std::vector<TaskBase*>& to_stop) noexcept {
    for (TaskBase* t : to_settle) settle_task(t, {});
    for (TaskBase* t : to_stop) {
        t->request_stop();
        t->release();
    }
    to_settle.clear();
    to_stop.clear();
}

bool TaskSupervisor::Impl::cancel(TaskId id) {
    std::vector<TaskBase*> to_settle;
    TaskBase* running = nullptr;
    {
        std::lock_guard lock(mutex);
        Record* r = table.find(id);
        if (r == nullptr || r->task == nullptr) return false;
        TaskBase* t = r->task;
        switch (r->status) {
            case TaskStatus::queued:
                thread_admission.remove(t);
                cancel_locked(t, *r, wall_now(), to_settle);
                break;
            case TaskStatus::delayed:
                --delayed;  // its timer finds the record finished and does nothing
                cancel_locked(t, *r, wall_now(), to_settle);
                break;
            case TaskStatus::started:
                running = t;
                running->add_ref();
                break;
            default: return false;
        }
    }
    if (running != nullptr) {
        // Outside the lock: stop callbacks registered by the task run here.
        const bool asked = running->request_stop();
        running->release();
        return asked;
    }
    for (TaskBase* t : to_settle) settle_task(t, {});
    return true;
}

bool TaskSupervisor::Impl::drained() const noexcept {
    return thread_admission.running() == 0 && thread_admission.queued() == 0;
}

bool TaskSupervisor::Impl::stop(const StopOptions& o) {
    std::vector<TaskBase*> to_settle;
    std::vector<TaskBase*> to_stop;
    std::unique_lock lock(mutex);
    if (stopping) throw Error("task supervisor is already stopping; call stop() from one thread at a time");
    if (!active && thread_pool.threads() == 0) return true;
    active = false;
    stopping = true;
    ++stop_calls;
    state_cv.notify_all();

    // Delayed tasks hold no slot and have not been queued: they never run.
    std::vector<TaskId> delayed_ids;
    table.for_each([&](TaskId id, const Record& r) {
        if (r.status == TaskStatus::delayed) delayed_ids.push_back(id);
    });
    for (TaskId id : delayed_ids) cancel_locked(table.find(id)->task, *table.find(id), wall_now(), to_settle);
    delayed = 0;
    if (o.cancel_tasks || !o.wait) cancel_all_locked(to_settle, to_stop);
    lock.unlock();
    settle_all(to_settle, to_stop);
    lock.lock();

    bool finished = true;
    if (o.wait) {
        const auto done = [this] { return drained(); };
        if (o.timeout) {
            finished = state_cv.wait_for(lock, *o.timeout, done);
        } else {
            state_cv.wait(lock, done);
        }
        if (!finished) {
            cancel_all_locked(to_settle, to_stop);
            lock.unlock();
            settle_all(to_settle, to_stop);
            lock.lock();
        }
    } else {
        finished = drained();
    }
    thread_pool.begin_stop();
    lock.unlock();
    timers.stop();  // without the lock: a timer callback may be waiting for it
    lock.lock();
    thread_pool.join(lock, finished);
    stopping = false;
    return finished;
}

void TaskSupervisor::Impl::schedule_wait_timeouts(TaskId id) {
    const auto now = detail::Timers::Clock::now();
    if (wait_timeouts->warning.count() > 0) timers.schedule(now + wait_timeouts->warning, &on_wait_warning, this, id);
    if (wait_timeouts->critical.count() > 0)
        timers.schedule(now + wait_timeouts->critical, &on_wait_critical, this, id);
}

void TaskSupervisor::Impl::on_delay_end(void* self, std::uint64_t id) noexcept {
    auto* impl = static_cast<Impl*>(self);
    std::lock_guard lock(impl->mutex);
    Record* r = impl->table.find(id);
    if (r == nullptr || r->status != TaskStatus::delayed) return;  // canceled meanwhile
    --impl->delayed;
    impl->enqueue(r->task, *r, wall_now());
}

void TaskSupervisor::Impl::on_wait_warning(void* self, std::uint64_t id) noexcept {
    static_cast<Impl*>(self)->on_wait_timeout(id, false);
}

void TaskSupervisor::Impl::on_wait_critical(void* self, std::uint64_t id) noexcept {
    static_cast<Impl*>(self)->on_wait_timeout(id, true);
}

void TaskSupervisor::Impl::on_wait_timeout(TaskId id, bool critical) noexcept {
    std::shared_ptr<const WaitTimeouts> timeouts;
    TaskInfo info;
    {
        std::lock_guard lock(mutex);
        const Record* r = table.find(id);
        if (r == nullptr || r->status != TaskStatus::queued || !wait_timeouts) return;
        info = detail::TaskTable::snapshot(id, *r);
        timeouts = wait_timeouts;
    }
    const auto& handler = critical ? timeouts->on_critical : timeouts->on_warning;
    try {
        if (handler) {
            handler(info);
        } else {
            const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(critical ? timeouts->critical
                                                                                                : timeouts->warning);
            log(critical ? LogLevel::critical : LogLevel::warning, "{} has waited more than {} to start", info,
                waited);
        }
    } catch (const std::exception& e) {
        log(LogLevel::error, "wait-timeout handler for task {} threw: {}", id, e.what());
    } catch (...) {
        log(LogLevel::error, "wait-timeout handler for task {} threw a non-standard exception", id);
    }
}

// ---------------------------------------------------------------- TaskSupervisor

TaskSupervisor::TaskSupervisor() : impl_(std::make_unique<Impl>()) {}

TaskSupervisor::~TaskSupervisor() {
    try {
        impl_->stop({.wait = true, .cancel_tasks = true, .timeout = std::nullopt});
        std::unique_lock lock(impl_->mutex);
        impl_->thread_pool.begin_stop();
        impl_->thread_pool.join(lock, true);
    } catch (const std::exception& e) {
        log(LogLevel::critical, "task supervisor could not stop cleanly: {}", e.what());
    }
}

TaskSupervisor& TaskSupervisor::instance() {
    static TaskSupervisor supervisor;
    return supervisor;
}

TaskSupervisor& task_supervisor = TaskSupervisor::instance();

void TaskSupervisor::set_thread_pool(const PoolOptions& options) {
    options.validate("thread pool");
    std::lock_guard lock(impl_->mutex);
    impl_->thread_options = options;
    impl_->thread_admission.configure(options);
    if (impl_->active) {
        impl_->thread_pool.configure(options);
        impl_->wake_thread_pool();
    }
}

void TaskSupervisor::set_retention(const RetentionOptions& options) {
    std::lock_guard lock(impl_->mutex);
    impl_->table.set_retention({options.max_finished, options.max_age}, wall_now());
}

void TaskSupervisor::set_wait_timeouts(WaitTimeouts timeouts) {
    if (timeouts.warning.count() < 0 || timeouts.critical.count() < 0)
        throw Error("wait timeouts must not be negative; use 0 to turn a level off");
    const bool any = timeouts.warning.count() > 0 || timeouts.critical.count() > 0;
    auto shared = any ? std::make_shared<const WaitTimeouts>(std::move(timeouts)) : nullptr;
    std::lock_guard lock(impl_->mutex);
    impl_->wait_timeouts = std::move(shared);
}

void TaskSupervisor::start() {
    std::lock_guard lock(impl_->mutex);
    if (impl_->active) return;
    if (impl_->stopping) throw Error("task supervisor is stopping; wait for stop() to return, then start()");
    impl_->thread_pool.resume();
    impl_->thread_pool.configure(impl_->thread_options);
    impl_->active = true;
    impl_->ever_started = true;
    impl_->state_cv.notify_all();
}

bool TaskSupervisor::stop(const StopOptions& options) { return impl_->stop(options); }

void TaskSupervisor::block() {
    std::unique_lock lock(impl_->mutex);
    const auto calls = impl_->stop_calls;
    impl_->state_cv.wait(lock, [&] { return !impl_->active || impl_->stop_calls != calls; });
}

bool TaskSupervisor::is_active() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->active;
}

std::optional<TaskInfo> TaskSupervisor::get_task_info(TaskId id) const {
    std::lock_guard lock(impl_->mutex);
    impl_->table.expire(wall_now());
    const Record* r = impl_->table.find(id);
    if (r == nullptr) return std::nullopt;
    return detail::TaskTable::snapshot(id, *r);
}

std::vector<TaskInfo> TaskSupervisor::get_tasks(std::optional<TaskType> type) const {
    std::vector<TaskInfo> out;
    std::lock_guard lock(impl_->mutex);
    impl_->table.expire(wall_now());
    out.reserve(impl_->table.in_use());
    impl_->table.for_each([&](TaskId id, const Record& r) {
        if (!type || r.type == *type) out.push_back(detail::TaskTable::snapshot(id, r));
    });
    return out;
}

SupervisorInfo TaskSupervisor::get_info() const {
    SupervisorInfo s;
    std::lock_guard lock(impl_->mutex);
    s.active = impl_->active;
    s.thread_pool.options = impl_->thread_options;
    s.thread_pool.workers = impl_->thread_pool.threads();
    s.thread_pool.idle = impl_->thread_pool.idle();
    s.thread_pool.queued = impl_->thread_admission.queued_by_rank();
    s.thread_pool.running = impl_->thread_admission.running_by_rank();
    s.delayed = impl_->delayed;
    s.records = impl_->table.in_use();
    return s;
}

bool TaskSupervisor::cancel_task(TaskId id) { return impl_->cancel(id); }

TaskId TaskSupervisor::put_task(detail::TaskBase* task, const TaskOptions& options) { return impl_->put(task, options); }

}  // namespace atasker
