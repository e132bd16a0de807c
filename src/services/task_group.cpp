#include <atasker/task_group.hpp>

#include <condition_variable>
#include <exception>
#include <iterator>
#include <list>
#include <mutex>
#include <utility>
#include <vector>

#include <atasker/log.hpp>

namespace atasker {

// A task of the group: its watcher, and what canceling it and listing its
// failure take. It lives in the state's list from before its put until its
// task ended, and holds the state while watched: a watcher told as the
// group goes finds the state alive, and the last one frees it.
struct TaskGroup::Member final : detail::TaskWatcher {
    std::shared_ptr<State> state;  // set once watched
    std::list<Member>::iterator self;
    const detail::TaskBase* task = nullptr;
    TaskId id = 0;  // 0 while its put is under way
    detail::SupervisorLink link;
    std::string name;

    void task_ended() noexcept override;
};

struct TaskGroup::State {
    /// `m`'s task ended: records a failure, cancels the rest on the first,
    /// and lets `m` go. Without the mutex.
    void ended(Member& m) noexcept;
    /// Closes the group and cancels every task put. Without the mutex.
    void cancel_all() noexcept;
    /// Cancels a task, without the mutex: canceling settles tasks, whose
    /// watchers come back here.
    static void cancel(TaskId id, const detail::SupervisorLink& link) noexcept;
    static void cancel(const std::vector<std::pair<TaskId, detail::SupervisorLink>>& tasks) noexcept {
        for (const auto& [id, link] : tasks) cancel(id, link);
    }
    /// Under the mutex: the tasks to cancel, all but `except`.
    void collect(const Member* except, std::vector<std::pair<TaskId, detail::SupervisorLink>>& out) const;

    mutable std::mutex mutex;
    std::condition_variable cv;          // members became empty
    std::list<Member> members;           // tasks put (or being put) that have not ended
    std::vector<TaskFailure> failures;   // in the order they failed, until wait() delivers them
    bool closing = false;                // a failure canceled the rest: puts throw
};

void TaskGroup::Member::task_ended() noexcept {
    const std::shared_ptr<State> keep = std::move(state);  // this member goes in ended()
    keep->ended(*this);
}

void TaskGroup::State::collect(const Member* except,
                               std::vector<std::pair<TaskId, detail::SupervisorLink>>& out) const {
    // Newest first: queued tasks go before running ones are stopped, so the
    // threads those free find nothing of the group's left to start. A
    // member whose put is under way has no id yet: adopt() cancels it.
    for (auto it = members.rbegin(); it != members.rend(); ++it)
        if (&*it != except && it->id != 0) out.emplace_back(it->id, it->link);
}

void TaskGroup::State::cancel(TaskId id, const detail::SupervisorLink& link) noexcept {
    try {
        (void)link.cancel_task(id);  // false: it ended, or runs without a stop token
    } catch (const std::exception& e) {
        log(LogLevel::error, "task group: could not cancel task {}: {}", id, e.what());
    }
}

void TaskGroup::State::ended(Member& m) noexcept {
    std::vector<std::pair<TaskId, detail::SupervisorLink>> to_cancel;
    try {
        std::lock_guard lock(mutex);
        if (m.task->end_status() == TaskStatus::failed) {
            m.task->mark_error_received();  // the group delivers it: the supervisor logs it at debug level
            try {
                failures.push_back(TaskFailure{m.id, std::move(m.name), m.task->error()});
            } catch (...) {
                log_message(LogLevel::error, detail::describe(m.task->error()));
            }
            if (!closing) {
                closing = true;
                collect(&m, to_cancel);
            }
        }
        members.erase(m.self);
        if (members.empty()) cv.notify_all();
    } catch (const std::exception& e) {  // no memory for the list of tasks to cancel
        log(LogLevel::critical, "task group: could not cancel the tasks left after a failure: {}", e.what());
    }
    cancel(to_cancel);
}

void TaskGroup::State::cancel_all() noexcept {
    std::vector<std::pair<TaskId, detail::SupervisorLink>> to_cancel;
    try {
        std::lock_guard lock(mutex);
        closing = true;
        collect(nullptr, to_cancel);
    } catch (const std::exception& e) {
        log(LogLevel::critical, "task group: could not cancel its tasks: {}", e.what());
    }
    cancel(to_cancel);
}

TaskGroup::TaskGroup(TaskOptions defaults)
    : defaults_(std::move(defaults)), state_(std::make_shared<State>()), uncaught_(std::uncaught_exceptions()) {}

TaskGroup::~TaskGroup() {
    try {
        // Left by an exception: the tasks' work is not wanted any more.
        if (std::uncaught_exceptions() > uncaught_) state_->cancel_all();
        std::vector<TaskFailure> undelivered;
        {
            std::unique_lock lock(state_->mutex);
            state_->cv.wait(lock, [this] { return state_->members.empty(); });
            undelivered = std::move(state_->failures);
        }
        for (const auto& f : undelivered)
            log(LogLevel::error, "task group: task {} '{}' failed and no wait() received it: {}", f.id, f.name,
                detail::describe(f.error));
    } catch (const std::exception& e) {
        log(LogLevel::critical, "task group: could not wait for its tasks: {}", e.what());
    }
}

TaskOptions TaskGroup::merged(const TaskOptions& own) const {
    TaskOptions o = own;
    if (o.name.empty()) o.name = defaults_.name;
    if (o.priority == Priority::normal) o.priority = defaults_.priority;
    if (o.delay.count() == 0) o.delay = defaults_.delay;
    if (o.supervisor == nullptr) o.supervisor = defaults_.supervisor;
    if (o.timeout.count() == 0) o.timeout = defaults_.timeout;
    if (o.retries == 0) o.retries = defaults_.retries;
    if (o.retry_delay.count() == 0) o.retry_delay = defaults_.retry_delay;
    if (!o.type) o.type = defaults_.type;
    return o;
}

TaskGroup::Member* TaskGroup::reserve(TaskSupervisor* supervisor, const std::string& name) {
    std::lock_guard lock(state_->mutex);
    if (state_->closing)
        throw Error("the task group is closing: one of its tasks failed and the group canceled the others; wait() "
                    "for it, and put new tasks through a new group");
    Member& m = state_->members.emplace_back();
    m.self = std::prev(state_->members.end());
    m.link = detail::SupervisorLink(supervisor);
    m.name = name;
    return &m;
}

void TaskGroup::unreserve(Member* member) noexcept {
    std::lock_guard lock(state_->mutex);
    state_->members.erase(member->self);
    if (state_->members.empty()) state_->cv.notify_all();
}

void TaskGroup::adopt(Member* member, detail::TaskBase& task) noexcept {
    const TaskId id = task.id;
    detail::SupervisorLink link;
    bool cancel_it = false;
    {
        std::lock_guard lock(state_->mutex);
        member->id = id;
        member->task = &task;
        member->state = state_;
        link = member->link;
        cancel_it = state_->closing;  // a failure came while it was being put
    }
    // Once watched, the member may go at any time: only copies are used after.
    if (!task.watch(*member)) {
        member->task_ended();  // it ended already
        return;
    }
    if (cancel_it) State::cancel(id, link);
}

void TaskGroup::wait() {
    std::unique_lock lock(state_->mutex);
    state_->cv.wait(lock, [this] { return state_->members.empty(); });
    if (state_->failures.empty()) return;
    std::vector<TaskFailure> failures = std::move(state_->failures);
    state_->failures.clear();
    lock.unlock();
    throw TaskGroupError(std::move(failures));
}

bool TaskGroup::closing() const {
    std::lock_guard lock(state_->mutex);
    return state_->closing;
}

std::size_t TaskGroup::unfinished() const {
    std::lock_guard lock(state_->mutex);
    return state_->members.size();
}

}  // namespace atasker
