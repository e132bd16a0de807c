#include <atasker/workers.hpp>

#include <atomic>

#include <atasker/background_task.hpp>
#include <atasker/log.hpp>

namespace atasker {

namespace detail {

namespace {

std::string default_worker_name() {
    static std::atomic<std::uint64_t> counter{0};
    return fmt::format("worker-{}", ++counter);
}

WorkerKind kind_of(const WorkerOptions& o, bool queue) {
    if (queue) return WorkerKind::queue;
    if (o.event) return WorkerKind::event;
    if (o.interval) return WorkerKind::interval;
    if (o.delay) return WorkerKind::delay;
    return WorkerKind::loop;
}

}  // namespace

WorkerCore::WorkerCore(WorkerOptions o, bool queue, Execute execute, Pending pending, Worker* owner)
    : supervisor_(o.supervisor != nullptr ? o.supervisor : &TaskSupervisor::instance()),
      name_(o.name.empty() ? default_worker_name() : std::move(o.name)),
      priority_(o.priority),
      kind_(kind_of(o, queue)),
      delay_before_(o.delay_before),
      overrun_(static_cast<int>(o.overrun)),
      on_error_(std::move(o.on_error)),
      execute_(std::move(execute)),
      pending_(std::move(pending)),
      owner_(owner) {
    if (o.interval && o.delay)
        throw Error(fmt::format("worker '{}': give interval or delay, not both (interval keeps a fixed rate, delay "
                                "pauses after each run)",
                                name_));
    if (queue && (o.interval || o.delay || o.event))
        throw Error(fmt::format("worker '{}': a queue worker runs once per put() item; drop interval, delay and event",
                                name_));
    if (o.event && (o.interval || o.delay))
        throw Error(fmt::format("worker '{}': an event worker runs on trigger(); drop interval and delay", name_));
    if (o.interval && o.interval->count() <= 0)
        throw Error(fmt::format("worker '{}': the interval must be positive; for back-to-back runs give no interval",
                                name_));
    if (o.delay && o.delay->count() < 0)
        throw Error(fmt::format("worker '{}': the delay must not be negative", name_));
    if (o.delay_before.count() < 0)
        throw Error(fmt::format("worker '{}': delay_before must not be negative", name_));
    if (o.interval) period_ = *o.interval;
    if (o.delay) period_ = *o.delay;
}

WorkerCore::~WorkerCore() = default;

void WorkerCore::start(const WorkerStartOptions& overrides) {
    Lock lock(mutex_);
    if (active_) return;
    if (in_flight_ || tasks_alive_ != 0) {
        if (runner_ == std::this_thread::get_id())
            throw Error(fmt::format("worker '{}' cannot be restarted from its own executor; start it from another "
                                    "thread",
                                    name_));
        idle_cv_.wait(lock, [this] { return !in_flight_ && tasks_alive_ == 0; });
        if (active_) return;
    }
    if (overrides.interval) {
        if (kind_ != WorkerKind::interval && kind_ != WorkerKind::delay)
            throw Error(fmt::format("worker '{}' has no interval to override; build it with .interval or .delay",
                                    name_));
        if (overrides.interval->count() <= 0 && kind_ == WorkerKind::interval)
            throw Error(fmt::format("worker '{}': the interval must be positive", name_));
        if (overrides.interval->count() < 0)
            throw Error(fmt::format("worker '{}': the delay must not be negative", name_));
    }
    if (!supervisor_->is_active())
        throw Error(fmt::format("task supervisor is not started; call start() on it before starting worker '{}'",
                                overrides.name ? *overrides.name : name_));
    if (overrides.name) name_ = *overrides.name;
    if (overrides.priority) priority_ = *overrides.priority;
    if (overrides.interval) period_ = *overrides.interval;
    active_ = true;
    ++generation_;
    if (!attached_) {
        supervisor_->attach_service(this);
        attached_ = true;
    }
    const auto now = Clock::now();
    switch (kind_) {
        case WorkerKind::loop:
        case WorkerKind::delay: arm(lock, now + delay_before_); break;
        case WorkerKind::interval:
            planned_ = now + delay_before_;
            arm(lock, planned_);
            break;
        case WorkerKind::event:
        case WorkerKind::queue:
            if (has_work_locked()) arm(lock, now + delay_before_);
            break;
    }
}

void WorkerCore::stop(bool wait) {
    Lock lock(mutex_);
    const bool inside = runner_ == std::this_thread::get_id();
    Task<void> current;
    if (active_) {
        active_ = false;
        ++generation_;
        current = current_;
    }
    const TimerId timer = std::exchange(timer_, 0);
    if (!in_flight_ && attached_) {
        attached_ = false;
        supervisor_->detach_service(this);
    }
    const bool in_flight = in_flight_ || tasks_alive_ != 0;
    idle_cv_.notify_all();
    lock.unlock();
    // Without the lock: cancel_call() waits for a call already running, and
    // that call (on_timer) takes the lock.
    if (timer != 0) supervisor_->cancel_call(timer);
    if (!in_flight || inside) return;
    // A queued run is canceled; a running one whose executor takes a stop
    // token is asked to stop.
    if (current.valid()) current.cancel();
    if (!wait) return;
    lock.lock();
    // Until the run ended and every run task is recorded as finished (a run
    // puts the next one from its own task, which ends just after).
    idle_cv_.wait(lock, [this] { return !in_flight_ && tasks_alive_ == 0; });
}

bool WorkerCore::is_active() const {
    std::lock_guard lock(mutex_);
    return active_;
}

WorkerInfo WorkerCore::info() const {
    std::lock_guard lock(mutex_);
    WorkerInfo i;
    i.name = name_;
    i.priority = priority_;
    i.active = active_;
    i.running = in_flight_;
    i.runs = runs_;
    i.errors = errors_;
    i.skipped_ticks = skipped_ticks_;
    i.late_runs = late_runs_;
    i.queued = pending_ ? pending_() : 0;
    i.last_task = last_task_;
    if (kind_ == WorkerKind::interval && active_) i.planned_tick = planned_;
    return i;
}

void WorkerCore::trigger() {
    if (kind_ != WorkerKind::event)
        throw Error(fmt::format("worker '{}' is not an event worker; build it with .event = true to use trigger()",
                                name_));
    Lock lock(mutex_);
    triggered_ = true;
    if (active_ && !in_flight_ && timer_ == 0) arm(lock, Clock::now() + delay_before_);
}

void WorkerCore::work_arrived() {
    Lock lock(mutex_);
    if (active_ && !in_flight_ && timer_ == 0) arm(lock, Clock::now() + delay_before_);
}

void WorkerCore::orphan() noexcept {
    std::lock_guard lock(mutex_);
    owner_ = nullptr;
}

void WorkerCore::stop_service() noexcept { stop(true); }

void WorkerCore::arm(Lock& lock, Clock::time_point when) {
    if (when <= Clock::now()) {
        launch(lock);
        return;
    }
    auto self = shared_from_this();
    const auto generation = generation_;
    timer_ = supervisor_->call_at(when, [self, generation] { self->on_timer(generation); });
    if (timer_ == 0) halt_locked(lock, true, "its task supervisor stopped");
}

void WorkerCore::on_timer(std::uint64_t generation) {
    Lock lock(mutex_);
    if (!active_ || generation != generation_ || in_flight_) return;
    timer_ = 0;
    launch(lock);
}

void WorkerCore::launch(Lock& lock) {
    in_flight_ = true;
    ++tasks_alive_;
    const auto seq = ++run_seq_;
    const auto generation = generation_;
    TaskOptions options;
    options.name = name_;
    options.priority = priority_;
    options.supervisor = supervisor_;
    // put_task takes the supervisor's lock: never under ours.
    lock.unlock();
    Task<void> task;
    std::exception_ptr failed;
    try {
        auto self = shared_from_this();
        task = background_task([self, generation, seq](
                                   std::stop_token token) { self->run(std::move(token), generation, seq); },
                               std::move(options))
                   .callback([self, seq](const Task<void>& done) {
                       // The wrapper never throws: an error means the run was
                       // canceled before it started.
                       self->task_finished(seq, done.error() != nullptr);
                   })();
    } catch (...) {
        failed = std::current_exception();
    }
    lock.lock();
    if (failed) {
        --tasks_alive_;
        if (in_flight_ && run_seq_ == seq) {
            in_flight_ = false;
            halt_locked(lock, true, describe(failed));
        }
        return;
    }
    if (last_task_ < task.id()) last_task_ = task.id();
    if (in_flight_ && run_seq_ == seq) {
        current_ = task;
        if (!active_) {
            // stop() ran before the handle was here to cancel: cancel it now.
            lock.unlock();
            task.cancel();
            lock.lock();
        }
    }
}

void WorkerCore::run(std::stop_token token, std::uint64_t generation, std::uint64_t seq) noexcept {
    Lock lock(mutex_);
    if (!in_flight_ || run_seq_ != seq) return;
    if (!active_ || generation != generation_) {
        finish_run(lock);
        return;
    }
    runner_ = std::this_thread::get_id();
    ++runs_;
    if (kind_ == WorkerKind::event) triggered_ = false;  // triggers from now on ask for one more run
    lock.unlock();
    bool keep = true;
    std::exception_ptr error;
    try {
        keep = execute_(std::move(token));
    } catch (...) {
        error = std::current_exception();
    }
    if (error) report_error(error);
    lock.lock();
    runner_ = {};
    if (error) ++errors_;
    if (!keep && active_ && generation == generation_) {
        active_ = false;
        ++generation_;
        log(LogLevel::debug, "worker '{}' stopped: its executor returned false", name_);
    }
    finish_run(lock);
}

void WorkerCore::task_finished(std::uint64_t seq, bool canceled) noexcept {
    Lock lock(mutex_);
    --tasks_alive_;
    if (canceled && in_flight_ && run_seq_ == seq) {
        finish_run(lock);
        return;
    }
    idle_cv_.notify_all();
}

void WorkerCore::finish_run(Lock& lock) {
    in_flight_ = false;
    Task<void> done = std::move(current_);
    if (active_) {
        try {
            schedule_next(lock);
        } catch (const std::exception& e) {
            halt_locked(lock, true, e.what());
        }
    } else if (attached_) {
        attached_ = false;
        supervisor_->detach_service(this);
    }
    idle_cv_.notify_all();
    lock.unlock();
}

bool WorkerCore::has_work_locked() const {
    return kind_ == WorkerKind::event ? triggered_ : kind_ == WorkerKind::queue && pending_() > 0;
}

void WorkerCore::schedule_next(Lock& lock) {
    const auto now = Clock::now();
    switch (kind_) {
        case WorkerKind::loop: arm(lock, now + delay_before_); break;
        case WorkerKind::delay: arm(lock, now + period_ + delay_before_); break;
        case WorkerKind::interval: {
            // Planned from the previous planned tick, never from the run's end: no drift.
            const auto next = planned_ + period_;
            if (next >= now) {
                planned_ = next;
                arm(lock, next);
                break;
            }
            const auto missed = static_cast<std::uint64_t>((now - planned_) / period_);  // ticks in (planned_, now]
            const auto last_missed = planned_ + period_ * static_cast<std::int64_t>(missed);
            if (static_cast<Overrun>(overrun_) == Overrun::skip) {
                skipped_ticks_ += missed;
                planned_ = last_missed + period_;
                arm(lock, planned_);
            } else {
                skipped_ticks_ += missed - 1;
                ++late_runs_;
                planned_ = last_missed;
                launch(lock);
            }
            break;
        }
        case WorkerKind::event:
        case WorkerKind::queue:
            if (has_work_locked()) arm(lock, now + delay_before_);
            break;
    }
}

void WorkerCore::report_error(const std::exception_ptr& error) noexcept {
    Worker* owner = nullptr;
    std::string name;
    {
        std::lock_guard lock(mutex_);
        owner = owner_;
        name = name_;
    }
    if (on_error_ && owner != nullptr) {
        try {
            on_error_(error, *owner);
            return;
        } catch (...) {
            log(LogLevel::error, "worker '{}': on_error threw: {}", name, describe(std::current_exception()));
        }
    }
    log(LogLevel::error, "worker '{}' executor failed: {}", name, describe(error));
}

void WorkerCore::halt_locked(Lock& /*lock*/, bool log_it, const std::string& why) {
    active_ = false;
    ++generation_;
    if (log_it) log(LogLevel::error, "worker '{}' stopped: {}", name_, why);
    if (!in_flight_ && attached_) {
        attached_ = false;
        supervisor_->detach_service(this);
    }
    idle_cv_.notify_all();
}

}  // namespace detail

Worker::~Worker() {
    core_->stop(true);
    core_->orphan();
}

void Worker::start(const WorkerStartOptions& overrides) { core_->start(overrides); }
void Worker::stop(bool wait) { core_->stop(wait); }
bool Worker::is_active() const { return core_->is_active(); }
WorkerInfo Worker::info() const { return core_->info(); }
void Worker::trigger() { core_->trigger(); }

}  // namespace atasker
