#pragma once
/// \file task_group.hpp
/// TaskGroup: tasks that succeed or fail together (asyncio.TaskGroup). The
/// first failure cancels the rest; wait() then throws TaskGroupError
/// listing every failure.
///
///     at::TaskGroup group({.priority = at::Priority::high});
///     auto page = group.background_task(fetch)(url);
///     auto parsed = group.background_task(parse_task)(blob);   // an MpTask
///     group.wait();   // all finished, or TaskGroupError after the first failure canceled the rest

#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <atasker/background_task.hpp>
#include <atasker/detail/task_base.hpp>
#include <atasker/error.hpp>
#include <atasker/export.hpp>
#include <atasker/mp_task.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task.hpp>
#include <atasker/task_options.hpp>

namespace atasker {

class TaskGroup;

/// The callable TaskGroup::background_task() returns: each call puts one
/// task through the group and returns its Task<R> handle. Copyable; it
/// refers to its group, which must outlive it.
template <class Wrapped>
class GroupTask {
public:
    /// Puts one task with these arguments (decayed copies, like std::thread)
    /// and has the group watch it. Thread-safe.
    /// \throws Error when the group is closing (a failure canceled its tasks),
    /// or as background_task() when the task cannot be put.
    template <class... Args>
    auto operator()(Args&&... args) const;

private:
    friend class TaskGroup;
    GroupTask(TaskGroup& group, Wrapped wrapped, TaskSupervisor* supervisor, std::string name)
        : group_(&group), wrapped_(std::move(wrapped)), supervisor_(supervisor), name_(std::move(name)) {}

    TaskGroup* group_;
    Wrapped wrapped_;
    TaskSupervisor* supervisor_;  // where the tasks go, for canceling them
    std::string name_;            // the tasks' name, for TaskGroupError
};

/// Tasks that succeed or fail together, after asyncio's TaskGroup. Tasks
/// put through the group (thread tasks and MpTasks alike) are watched; on
/// the first failure, the group cancels every other task it holds, as
/// TaskSupervisor::cancel_task() does: a queued or delayed task is canceled,
/// a running thread task is asked to stop (its std::stop_token), a running
/// process task is killed. Newest tasks go first, so threads freed by the
/// stopped ones find nothing of the group's left to start. The group learns
/// of a failure as the failed task settles, on its thread, which has by
/// then taken its next task: if that is one of the group's, it is running
/// and asked to stop at once (a stop token sees the request from the
/// start). The group is then closing: puts throw.
///
/// wait() waits for every task, then throws TaskGroupError listing every
/// failure (a task that ended failed). Tasks that ended canceled, because
/// the group or anyone else canceled them, are not failures and are not
/// listed; a task that ignored its stop request may still complete.
///
/// The group receives its tasks' failures: the supervisor logs them at
/// debug level. The destructor waits too and never throws: what no wait()
/// delivered is logged at error level. A group left by an exception (its
/// scope unwinding) cancels its tasks first, as asyncio's does when its
/// body raises.
///
/// Every member function is thread-safe; tasks may be put from any thread,
/// the group's own tasks included.
class ATASKER_API TaskGroup {
public:
    /// A group whose tasks take `defaults` (see background_task()). The
    /// tasks go to `defaults.supervisor` (nullptr: the default task_supervisor).
    explicit TaskGroup(TaskOptions defaults = {});
    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;
    /// Waits for every task and never throws; logs at error level each
    /// failure no wait() delivered. Called while an exception unwinds the
    /// group's scope, it cancels the tasks first.
    ~TaskGroup();

    /// Wraps `fn` (any callable, as at::background_task()) to put its tasks
    /// through the group, with the group's options.
    template <class F>
    [[nodiscard]] auto background_task(F&& fn) {
        return wrap(std::forward<F>(fn), defaults_);
    }
    /// The same with the task's own `options`; a field left at its default
    /// takes the group's: an empty name, Priority::normal, no delay, no run
    /// timeout, a null supervisor. (So a normal task in a group of another
    /// priority is put with the Priority overload below.) A run timeout is
    /// for process tasks only, as with at::background_task().
    template <class F>
    [[nodiscard]] auto background_task(F&& fn, const TaskOptions& options) {
        return wrap(std::forward<F>(fn), merged(options));
    }
    /// The same with the group's options and this priority.
    template <class F>
    [[nodiscard]] auto background_task(F&& fn, Priority priority) {
        TaskOptions o = defaults_;
        o.priority = priority;
        return wrap(std::forward<F>(fn), std::move(o));
    }

    /// Waits until every task put so far has finished (completed, failed or
    /// canceled), then returns. Not from one of the group's own tasks, which
    /// would wait for itself. \throws TaskGroupError listing every failure
    /// not yet delivered, first to fail first; each is delivered once. After
    /// a failure the group is closing for good; after a wait() that
    /// returned, more tasks may be put.
    void wait();
    /// True once a failure canceled the group's tasks: puts throw.
    [[nodiscard]] bool closing() const;
    /// The group's tasks that have not finished.
    [[nodiscard]] std::size_t unfinished() const;

private:
    template <class W>
    friend class GroupTask;
    struct State;   // shared with the watchers of the group's tasks
    struct Member;  // one task of the group: its watcher

    template <class F>
    auto wrap(F&& fn, TaskOptions options) {
        TaskSupervisor* sup = options.supervisor != nullptr ? options.supervisor : &TaskSupervisor::instance();
        std::string name = options.name;
        if constexpr (detail::is_mp_task<std::remove_cvref_t<F>>::value) {
            if (name.empty()) name = fn.name();  // as background_task() names a process task
        }
        auto wrapped = atasker::background_task(std::forward<F>(fn), std::move(options));
        return GroupTask<decltype(wrapped)>(*this, std::move(wrapped), sup, std::move(name));
    }
    [[nodiscard]] TaskOptions merged(const TaskOptions& own) const;

    /// Before a put: a place for the task. \throws Error when closing.
    [[nodiscard]] Member* reserve(TaskSupervisor* supervisor, const std::string& name);
    /// The put threw: the place goes.
    void unreserve(Member* member) noexcept;
    /// The put returned: the group watches `task`, whose id it now has.
    void adopt(Member* member, detail::TaskBase& task) noexcept;

    TaskOptions defaults_;
    std::shared_ptr<State> state_;
    int uncaught_ = 0;  // std::uncaught_exceptions() at construction
};

template <class Wrapped>
template <class... Args>
auto GroupTask<Wrapped>::operator()(Args&&... args) const {
    TaskGroup::Member* member = group_->reserve(supervisor_, name_);
    try {
        auto handle = wrapped_(std::forward<Args>(args)...);
        group_->adopt(member, detail::base_of(handle));
        return handle;
    } catch (...) {
        group_->unreserve(member);
        throw;
    }
}

}  // namespace atasker
