// The supervisor's life cycle, configuration and queries (see
// supervisor_impl.hpp for where the rest lives).

#include <atasker/supervisor.hpp>

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <unordered_set>
#include <utility>

#include <atasker/error.hpp>
#include <atasker/log.hpp>

#include "core/supervisor_impl.hpp"

namespace atasker {

using detail::Record;
using detail::wall_now;

namespace {

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

}  // namespace

// ---------------------------------------------------------------- Impl

TaskSupervisor::Impl::Impl() : lanes(detail::make_lanes(*this)) {}

TaskSupervisor::Impl::~Impl() = default;

void TaskSupervisor::Impl::configure(TaskType t, const PoolOptions& options) {
    std::unique_lock lock(mutex);
    lane(t).configure(options, active, lock);
}

TaskInfo TaskSupervisor::Impl::info_of(TaskId id, const Record& r) const {
    TaskInfo info = table.snapshot(id, r);
    if (r.status == TaskStatus::started) {
        const float live = lane(r.type).live_progress(*r.task);
        if (live >= 0.0F) info.progress = live;
    }
    return info;
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
    if (impl_->on_own_thread()) {
        // std::exit() from one of this supervisor's tasks: the calling task
        // can be neither waited for nor joined. Stop without waiting and keep
        // the state its threads still use; the process is ending.
        impl_->abandon();
        auto& live = live_supervisors();
        std::lock_guard lock(live.mutex);
        try {
            live.abandoned.push_back(std::move(impl_));
        } catch (...) {
            (void)impl_.release();  // no memory to keep it: leaked, as wanted
        }
        return;
    }
    impl_->shut_down();
}

TaskSupervisor& TaskSupervisor::instance() {
    static TaskSupervisor supervisor;
    return supervisor;
}

TaskSupervisor& task_supervisor = TaskSupervisor::instance();

void TaskSupervisor::set_thread_pool(const PoolOptions& options) {
    options.validate("thread pool");
    if (options.max_tasks_per_worker != 0 || options.max_worker_memory != 0 || options.initializer)
        throw Error("thread pool: max_tasks_per_worker, max_worker_memory and initializer apply to worker processes; "
                    "give them to set_mp_pool(), and a thread pool's initializer as thread_initializer");
    impl_->configure(TaskType::thread, options);
}

void TaskSupervisor::set_mp_pool(const PoolOptions& options) {
    options.validate("process pool");
    if (options.thread_initializer)
        throw Error("process pool: thread_initializer runs in thread pool threads, but process tasks run in worker "
                    "processes; register an at::MpInit and give it as initializer");
    impl_->configure(TaskType::mp, options);
}

void TaskSupervisor::set_retention(const RetentionOptions& options) {
    std::lock_guard lock(impl_->mutex);
    impl_->table.set_retention(options, wall_now());
}

void TaskSupervisor::start() {
    std::unique_lock lock(impl_->mutex);
    if (impl_->active) return;
    if (impl_->stopping) throw Error("task supervisor is stopping; wait for stop() to return, then start()");
    impl_->timers.resume();
    try {
        impl_->active = true;
        for (const auto& l : impl_->lanes) l->start(lock);
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
    impl_->mutex.drain_inbox();  // a put's id is found as soon as the put returns
    impl_->table.expire(wall_now());
    const Record* r = impl_->table.find(id);
    if (r == nullptr) return std::nullopt;
    return impl_->info_of(id, *r);
}

std::vector<TaskInfo> TaskSupervisor::get_tasks(std::optional<TaskType> type) const {
    std::vector<TaskInfo> out;
    std::lock_guard lock(impl_->mutex);
    impl_->mutex.drain_inbox();
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
    impl_->mutex.drain_inbox();  // tasks put count as queued at once
    s.active = impl_->active;
    for (TaskType t : {TaskType::thread, TaskType::mp, TaskType::remote}) {
        PoolInfo& pool = t == TaskType::thread ? s.thread_pool : t == TaskType::mp ? s.mp_pool : s.remote_pool;
        const detail::Lane& lane = impl_->lane(t);
        lane.describe(pool);
        pool.queued = lane.admission().queued_by_rank();
        pool.running = lane.admission().running_by_rank();
    }
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

bool detail::SupervisorLink::run_waited(TaskBase& task) const noexcept {
    auto& live = live_supervisors();
    std::shared_lock lock(live.mutex);
    if (!live.serials.contains(serial_)) return false;
    // The supervisor stays while `lock` is held, and once the task is taken
    // its lane does not free what runs it until this thread is done.
    return supervisor_->impl_->run_waited(&task, lock);
}

}  // namespace atasker
