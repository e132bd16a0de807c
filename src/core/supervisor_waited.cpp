// A task ended by the thread that waits for it. A process task that ends
// quietly, put by a plain thread while a worker was idle, was started by
// its put (ProcessLane::start_here); the thread that then blocks in
// Task::wait() on it asks its lane for the answer and, when it gets it,
// ends the task itself, as the lane's thread would have. No lane thread is
// woken on the way there or back.

#include <optional>

#include "core/supervisor_impl.hpp"
#include "core/wait_hook.hpp"

namespace atasker {

using detail::Record;
using detail::TaskBase;

bool TaskSupervisor::Impl::run_waited(TaskBase* task, std::shared_lock<std::shared_mutex>& link) noexcept {
    detail::Lane& to = lane(task->type);
    // A thread with a wait hook (a fiber loop's) must not block on a call.
    if (!to.runs_waited() || detail::wait_hook_installed()) return false;
    std::optional<detail::Job> job;
    {
        std::lock_guard held(mutex);
        const Record* r = table.find(task->id);
        if (r == nullptr || r->live_task() != task || r->status != TaskStatus::started) return false;
        job = to.start_waited(task);
        if (!job) return false;
    }
    // The task runs: stop() and the destructor wait for it like any running
    // task, and its lane keeps what it runs on until run_waited() returns.
    link.unlock();
    to.run_waited(*job);
    return true;
}

}  // namespace atasker
