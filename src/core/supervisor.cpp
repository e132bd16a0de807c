#include <atasker/supervisor.hpp>

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_set>
#include <utility>

#include <atasker/error.hpp>
#include <atasker/init.hpp>
#include <atasker/log.hpp>

#include "core/put_lock.hpp"
#include "core/supervisor_impl.hpp"
#include "core/task_outcome.hpp"

namespace atasker {

using detail::Record;
using detail::TaskBase;
using detail::WallNanos;
using detail::wall_now;

namespace {

bool known_priority(Priority p) noexcept {
    return p == Priority::critical || p == Priority::high || p == Priority::normal || p == Priority::low;
}

/// The supervisors alive, by serial, for handles that may outlive theirs. A
/// supervisor leaves it first thing in its destructor, while it waits for
/// every call a handle made through it.
struct LiveSupervisors {
    std::shared_mutex mutex;
    std::unordered_set<std::uint64_t> serials;
    std::uint64_t last_serial = 0;
    /// The state of supervisors destroyed by std::exit() from one of their
    /// own tasks: their threads still use it while the process ends. Kept
    /// reachable, so leak checkers do not report it.
    std::vector<std::unique_ptr<TaskSupervisor::Impl>> abandoned;
};
LiveSupervisors& live_supervisors() {
    // Never destroyed: the default supervisor may be destroyed after it.
    static auto* live = new LiveSupervisors;
    return *live;
}

PoolOptions default_thread_pool() {
    PoolOptions o;
    o.pool_size = std::max(2U, std::thread::hardware_concurrency());
    return o;
}

}  // namespace

// ---------------------------------------------------------------- Impl

TaskSupervisor::Impl::Impl() : thread_options(default_thread_pool()) { thread_admission.configure(thread_options); }

TaskSupervisor::Impl::~Impl() = default;

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
    task->rank = static_cast<std::uint8_t>(priority_rank(o.priority));
    std::string name = o.name;  // copied before the lock is taken
    const WallNanos now = wall_now();
    // A thread task with nothing to set up under the mutex goes to the
    // inbox, with an id reserved for it. Not a critical one: it may have to
    // grow a saturated pool at once. Not with wait thresholds: their timers
    // start when the task is queued.
    detail::ReservedIds::Reserved reserved;
    if (task->type == TaskType::thread && o.priority != Priority::critical && o.delay.count() == 0 &&
        name.empty() && !has_wait_timeouts.load(std::memory_order_relaxed)) {
        reserved = reserved_ids.take();
        if (reserved.id != 0) {
            task->id = reserved.id;
            reserved.record->queued = now;
            guard.task = nullptr;  // the inbox's from here
            if (mutex.push(task)) return reserved.id;
            guard.task = task;  // the inbox is closed: the supervisor is stopped
        }
    }
    detail::PutLock put_lock(mutex, puts_in_flight);
    auto& lock = put_lock.lock();
    if (reserved.id != 0) table.unreserve(reserved.id);
    if (!active)
        throw Error(ever_started ? "task supervisor is stopped; call start() before putting tasks"
                                 : "task supervisor is not started; call start() before putting tasks");
    if (task->type == TaskType::mp && !mp_pool)
        throw Error("the process pool is not set up; call set_mp_pool() before putting process tasks");
    Record* r = nullptr;
    const TaskId id = table.insert(r);
    try {
        // What can still fail (memory, the timer thread's start) comes before
        // the task is linked: a put that throws leaves no record behind. The
        // delay's timer cannot fire before the record says delayed: its
        // callback takes the mutex held here.
        table.set_name(*r, std::move(name));
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
    } else if (const DirectStart direct = start_direct(task, *r, now); direct.calls != nullptr) {
        detail::WorkerProcesses& workers = mp_pool->workers();
        lock.unlock();
        direct.calls->start(*this, workers, task, direct.borrowed, direct.call);
        return id;
    } else {
        enqueue(task, *r, now);
    }
    return id;
}

void TaskSupervisor::Impl::queue_from_inbox(TaskBase* oldest) noexcept {
    for (TaskBase* task = oldest; task != nullptr;) {
        TaskBase* next = task->next;
        task->next = nullptr;
        Record& r = table.publish(task->id);
        link_record(r, task);
        enqueue(task, r, r.queued);  // the put wrote its time
        task = next;
    }
    refill_reserved_ids();
}

void TaskSupervisor::Impl::link_record(Record& r, TaskBase* task) noexcept {
    r.rank = task->rank;
    r.type = task->type;
    r.task = task;  // the supervisor's reference, until the task is settled
}

void TaskSupervisor::Impl::refill_reserved_ids() noexcept {
    reserved_ids.refill([this] {
        const TaskId id = table.reserve();
        return detail::ReservedIds::Reserved{id, &table.reserved(id)};
    });
}

bool TaskSupervisor::Impl::hungry() const noexcept {
    // Threads past those busy or on their way to the mutex, within capacity.
    return thread_pool.threads() - thread_pool.sleeping() < thread_pool.options().capacity();
}

TaskSupervisor::Impl::DirectStart TaskSupervisor::Impl::start_direct(TaskBase* task, Record& r, WallNanos now) {
    DirectStart d;
    if (task->type != TaskType::mp || mp_admission.queued() != 0) return d;
    detail::DirectCalls* calls = detail::DirectCalls::current();
    if (calls == nullptr || !calls->open() || !task->fiber_mp_call(d.call) || d.call.timeout.count() > 0) return d;
    // Admission decides exactly as for a pool thread: the queue is empty, so
    // the task starts now if its priority's limit allows one more.
    (void)mp_admission.push(task);  // the only one queued: it has no task before it
    if (mp_admission.startable(0) == 0 || (d.borrowed = mp_threads.borrow_idle()) == nullptr) {
        (void)mp_admission.remove(task, nullptr);
        return d;
    }
    (void)mp_admission.pop();  // `task`, the only one queued
    r.status = TaskStatus::started;
    r.started = now;
    d.calls = calls;
    return d;
}

void TaskSupervisor::Impl::finish_direct(TaskBase* task, detail::ThreadPool::Sleeper* borrowed,
                                         double progress) noexcept {
    auto [status, error] = detail::outcome_of(*task);
    const WallNanos now = wall_now();
    std::string log_line;
    {
        std::unique_lock lock(mutex);
        if (progress > 0.0 && progress <= 1.0)
            table.find(task->id)->progress.store(static_cast<float>(progress), std::memory_order_relaxed);
        log_line = complete_task(task, status, std::move(error), now);
        mp_threads.give_back(borrowed);
        wake(TaskType::mp);
    }
    settle_task(task, log_line);
}

void TaskSupervisor::Impl::requeue_direct(TaskBase* task, detail::ThreadPool::Sleeper* borrowed) noexcept {
    std::unique_lock lock(mutex);
    mp_admission.finished(task->priority());
    mp_threads.give_back(borrowed);
    Record& r = *table.find(task->id);
    enqueue(task, r, r.queued);
}

void TaskSupervisor::Impl::unlock_and_send(std::mutex& raw) noexcept {
    const auto threads = thread_pool.take_unsent();
    const auto processes = mp_threads.take_unsent();
    const std::size_t lost = std::exchange(thresholds_lost, 0);
    raw.unlock();
    thread_pool.notify(threads);
    mp_threads.notify(processes);
    if (lost > 0) {
        try {
            log(LogLevel::error, "{} task(s) queued without their wait-time thresholds: the timers could not take them",
                lost);
        } catch (...) {  // no memory for the message either
        }
    }
}

void TaskSupervisor::Impl::enqueue(TaskBase* task, Record& r, WallNanos now) noexcept {
    r.status = TaskStatus::queued;
    r.queued = now;
    r.queue_before = admission(task->type).push(task);
    if (wait_timeouts) schedule_wait_timeouts(task->id);
    wake(task->type);
}

void TaskSupervisor::Impl::wake(TaskType type) noexcept {
    // Threads already woken or starting will each take one of the startable tasks.
    auto& a = admission(type);
    auto& p = pool(type);
    const std::size_t n = a.startable(0);
    const std::size_t pending = p.pending();
    if (n > pending) p.wake(n - pending, a.critical_waiting());
}

detail::ThreadPool::Host::Taken TaskSupervisor::Impl::take_task(TaskType type, std::int64_t now) {
    TaskBase* t = admission(type).pop();
    if (t == nullptr) return {};
    Record* r = table.find(t->id);
    r->status = TaskStatus::started;
    r->started = now;
    return {t, &r->progress};
}

std::string TaskSupervisor::Impl::complete_task(TaskBase* task, TaskStatus status, std::string error,
                                                std::int64_t now) {
    admission(task->type).finished(task->priority());
    return finish_record(task, *table.find(task->id), status, std::move(error), now);
}

int TaskSupervisor::Impl::thread_started(TaskType type) noexcept {
    // mp_pool outlives every process-pool thread: stop() joins them first.
    return type == TaskType::mp ? mp_pool->attach_thread() : -1;
}

void TaskSupervisor::Impl::thread_exiting(TaskType type) noexcept {
    if (type == TaskType::mp) mp_pool->detach_thread();
}

void TaskSupervisor::Impl::ensure_mp_pool(std::unique_lock<detail::SupervisorMutex>& lock) {
    if (!mp_options) return;
    if (!mp_pool) {
        // Without the lock: it may fork the zygote and waits for it.
        lock.unlock();
        auto created = std::make_unique<detail::MpPool>();
        lock.lock();
        if (!mp_pool) mp_pool = std::move(created);
    }
    PoolOptions o = *mp_options;
    const std::size_t slots = mp_pool->slot_count();
    if (o.capacity() > slots) {
        if (o.pool_size != 0 || o.max_size)
            throw Error(fmt::format("process pool: max_size ({}) exceeds the {} worker slots at::init() reserved; "
                                    "call at::init({{.max_workers = {}}}) first thing in main",
                                    o.capacity(), slots, o.capacity()));
        o.max_size = slots;  // "unlimited" processes: as many as there are slots
    }
    mp_admission.configure(o);
    if (active) {
        mp_threads.configure(o);
        wake(TaskType::mp);
    }
}

TaskInfo TaskSupervisor::Impl::info_of(TaskId id, const Record& r) const {
    TaskInfo info = table.snapshot(id, r);
    if (r.status == TaskStatus::started) {
        const float live = r.task->live_progress();
        if (live >= 0.0F) info.progress = live;
    }
    return info;
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

void TaskSupervisor::Impl::settle_task(TaskBase* task, const std::string& log_line) noexcept {
    task->mark_done();
    task->run_callback();
    if (!log_line.empty()) log_message(LogLevel::error, log_line);
    task->release();
}

void TaskSupervisor::Impl::cancel_locked(TaskBase* task, Record& r, WallNanos now, std::vector<TaskBase*>& to_settle) {
    r.started = 0;  // it held the queue's back link
    std::string message = fmt::format("task {} was canceled before it started", task->id);
    task->set_error(std::make_exception_ptr(CanceledError(message)), TaskStatus::canceled);
    finish_record(task, r, TaskStatus::canceled, std::move(message), now);
    to_settle.push_back(task);
}

void TaskSupervisor::Impl::cancel_all_locked(std::vector<TaskBase*>& to_settle, std::vector<TaskBase*>& to_stop) {
    const WallNanos now = wall_now();
    for (auto* a : {&thread_admission, &mp_admission}) {
        for (TaskBase* t = a->take_all(); t != nullptr;) {
            TaskBase* next = t->next;
            t->next = nullptr;
            cancel_locked(t, *table.find(t->id), now, to_settle);
            t = next;
        }
    }
    table.for_each([&](TaskId, const Record& r) {
        if (r.status == TaskStatus::started) {
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
        if (r == nullptr || r->live_task() == nullptr) return false;
        TaskBase* t = r->task;
        switch (r->status) {
            case TaskStatus::queued:
                if (TaskBase* after = admission(t->type).remove(t, r->queue_before); after != nullptr)
                    table.find(after->id)->queue_before = r->queue_before;
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
    return thread_admission.running() == 0 && thread_admission.queued() == 0 && mp_admission.running() == 0 &&
           mp_admission.queued() == 0;
}

bool TaskSupervisor::Impl::stop(const StopOptions& o) {
    // A task (or a completion callback) on one of the pools' threads: that
    // thread can neither be waited for nor joined by itself.
    const bool own_thread = detail::ThreadPool::current_host() == this;
    if (own_thread && o.wait)
        throw Error("stop() waits for every running task, and it was called from one of this supervisor's own "
                    "tasks (or a completion callback); pass {.wait = false}, or call stop() from another thread");
    std::vector<TaskBase*> to_settle;
    std::vector<TaskBase*> to_stop;
    std::unique_lock lock(mutex);
    if (stopping) {
        // Another thread's stop() is under way; from a pool thread it may be
        // waiting for this very task, so only the others wait for it to end.
        if (own_thread) return false;
        state_cv.wait(lock, [this] { return !stopping; });
    }
    // Workers, then aloops, stop while the pools still serve what they put.
    auto in_order = services;
    std::stable_sort(in_order.begin(), in_order.end(),
                     [](const detail::Service* a, const detail::Service* b) { return a->stop_order() < b->stop_order(); });
    lock.unlock();
    for (auto* service : in_order) service->stop_service();
    lock.lock();
    if (!active && thread_pool.empty() && mp_threads.empty() && !mp_pool) return true;
    active = false;
    // Puts throw from now on; what the inbox holds was put before and is
    // queued like any other task.
    if (TaskBase* oldest = mutex.close_inbox(); oldest != nullptr) queue_from_inbox(oldest);
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
    mp_threads.begin_stop();
    lock.unlock();
    timers.stop();  // without the lock: a timer callback may be waiting for it
    lock.lock();
    thread_pool.join(lock, finished && !own_thread);
    mp_threads.join(lock, finished && !own_thread);
    std::unique_ptr<detail::MpPool> ended;
    if (mp_threads.empty()) ended = std::move(mp_pool);  // every worker and the zygote end with it
    stopping = false;
    state_cv.notify_all();
    lock.unlock();
    ended.reset();
    return finished;
}

void TaskSupervisor::Impl::schedule_wait_timeouts(TaskId id) noexcept {
    const auto now = detail::Timers::Clock::now();
    try {
        if (wait_timeouts->warning.count() > 0)
            timers.schedule(now + wait_timeouts->warning, &on_wait_warning, this, id);
        if (wait_timeouts->critical.count() > 0)
            timers.schedule(now + wait_timeouts->critical, &on_wait_critical, this, id);
    } catch (...) {
        // The task is queued all the same; only its thresholds are lost. Said
        // once the lock is released (unlock_and_send).
        ++thresholds_lost;
        mutex.defer();
    }
}

void TaskSupervisor::Impl::on_delay_end(void* self, std::uint64_t id) noexcept {
    auto* impl = static_cast<Impl*>(self);
    const WallNanos now = wall_now();
    std::unique_lock lock(impl->mutex);
    Record* r = impl->table.find(id);
    if (r == nullptr || r->status != TaskStatus::delayed) return;  // canceled meanwhile
    --impl->delayed;
    impl->enqueue(r->task, *r, now);
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
        info = table.snapshot(id, *r);
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

TaskSupervisor::TaskSupervisor() : impl_(std::make_unique<Impl>()) {
    auto& live = live_supervisors();
    std::lock_guard lock(live.mutex);
    serial_ = ++live.last_serial;
    live.serials.insert(serial_);
}

TaskSupervisor::~TaskSupervisor() {
    {
        auto& live = live_supervisors();
        std::lock_guard lock(live.mutex);
        live.serials.erase(serial_);
    }
    if (detail::ThreadPool::current_host() == impl_.get()) {
        // std::exit() from one of this supervisor's tasks: the calling task
        // can be neither waited for nor joined. Stop without waiting and keep
        // the state its threads still use; the process is ending.
        try {
            impl_->stop({.wait = false, .cancel_tasks = true, .timeout = std::nullopt});
        } catch (const std::exception& e) {
            log(LogLevel::critical, "task supervisor could not stop cleanly: {}", e.what());
        }
        auto& live = live_supervisors();
        std::lock_guard lock(live.mutex);
        try {
            live.abandoned.push_back(std::move(impl_));
        } catch (...) {
            (void)impl_.release();  // no memory to keep it: leaked, as wanted
        }
        return;
    }
    try {
        impl_->stop({.wait = true, .cancel_tasks = true, .timeout = std::nullopt});
        std::unique_lock lock(impl_->mutex);
        for (auto* p : {&impl_->thread_pool, &impl_->mp_threads}) {
            p->begin_stop();
            p->join(lock, true);
        }
        auto ended = std::move(impl_->mp_pool);
        lock.unlock();
        ended.reset();
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
    std::unique_lock lock(impl_->mutex);
    const PoolOptions previous = impl_->thread_options;
    impl_->thread_options = options;
    impl_->thread_admission.configure(options);
    if (!impl_->active) return;
    try {
        impl_->thread_pool.configure(options);
    } catch (...) {
        // The pool keeps the options it had; threads started meanwhile
        // retire when idle, as above any lowered min_size.
        impl_->thread_options = previous;
        impl_->thread_admission.configure(previous);
        impl_->thread_pool.configure(previous);
        throw;
    }
    impl_->wake(TaskType::thread);
}

void TaskSupervisor::set_mp_pool(const PoolOptions& options) {
    options.validate("process pool");
    // Fork the zygote now if nobody did: the fewer threads exist, the safer.
    if (!initialized()) init();
    std::unique_lock lock(impl_->mutex);
    const auto previous = impl_->mp_options;
    impl_->mp_options = options;
    try {
        if (impl_->active) impl_->ensure_mp_pool(lock);
    } catch (...) {
        impl_->mp_options = previous;
        throw;
    }
}

void TaskSupervisor::set_retention(const RetentionOptions& options) {
    std::lock_guard lock(impl_->mutex);
    impl_->table.set_retention(options, wall_now());
}

void TaskSupervisor::set_wait_timeouts(WaitTimeouts timeouts) {
    if (timeouts.warning.count() < 0 || timeouts.critical.count() < 0)
        throw Error("wait timeouts must not be negative; use 0 to turn a level off");
    const bool any = timeouts.warning.count() > 0 || timeouts.critical.count() > 0;
    auto shared = any ? std::make_shared<const WaitTimeouts>(std::move(timeouts)) : nullptr;
    std::lock_guard lock(impl_->mutex);
    impl_->has_wait_timeouts.store(shared != nullptr, std::memory_order_relaxed);
    impl_->wait_timeouts = std::move(shared);
}

void TaskSupervisor::start() {
    std::unique_lock lock(impl_->mutex);
    if (impl_->active) return;
    if (impl_->stopping) throw Error("task supervisor is stopping; wait for stop() to return, then start()");
    impl_->thread_pool.resume();
    impl_->mp_threads.resume();
    impl_->timers.resume();
    try {
        impl_->active = true;
        impl_->thread_pool.configure(impl_->thread_options);
        impl_->ensure_mp_pool(lock);
    } catch (...) {
        // What did start stops again: no thread, worker or zygote is left.
        impl_->active = false;
        lock.unlock();
        impl_->stop({.wait = false, .cancel_tasks = false, .timeout = std::nullopt});
        throw;
    }
    impl_->ever_started = true;
    impl_->refill_reserved_ids();
    impl_->mutex.open_inbox();
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
    return impl_->info_of(id, *r);
}

std::vector<TaskInfo> TaskSupervisor::get_tasks(std::optional<TaskType> type) const {
    std::vector<TaskInfo> out;
    std::lock_guard lock(impl_->mutex);
    impl_->table.expire(wall_now());
    out.reserve(impl_->table.in_use());
    impl_->table.for_each([&](TaskId id, const Record& r) {
        if (!type || r.type == *type) out.push_back(impl_->info_of(id, r));
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
    if (impl_->mp_options) s.mp_pool.options = *impl_->mp_options;
    s.mp_pool.workers = impl_->mp_threads.threads();
    s.mp_pool.idle = impl_->mp_threads.idle();
    s.mp_pool.queued = impl_->mp_admission.queued_by_rank();
    s.mp_pool.running = impl_->mp_admission.running_by_rank();
    s.delayed = impl_->delayed;
    s.records = impl_->table.in_use();
    return s;
}

bool TaskSupervisor::cancel_task(TaskId id) { return impl_->cancel(id); }

void TaskSupervisor::attach_service(detail::Service* service) {
    std::lock_guard lock(impl_->mutex);
    impl_->services.push_back(service);
}

void TaskSupervisor::detach_service(detail::Service* service) {
    std::lock_guard lock(impl_->mutex);
    std::erase(impl_->services, service);
}

TaskId TaskSupervisor::put_task(detail::TaskBase* task, const TaskOptions& options) { return impl_->put(task, options); }

// ---------------------------------------------------------------- SupervisorLink

std::optional<TaskInfo> detail::SupervisorLink::task_info(TaskId id) const {
    auto& live = live_supervisors();
    std::shared_lock lock(live.mutex);
    if (!live.serials.contains(serial_)) return std::nullopt;
    return supervisor_->get_task_info(id);
}

bool detail::SupervisorLink::cancel_task(TaskId id) const {
    auto& live = live_supervisors();
    std::shared_lock lock(live.mutex);
    if (!live.serials.contains(serial_)) return false;
    return supervisor_->cancel_task(id);
}

}  // namespace atasker
