// Stopping: stop() and the destructor's shutdown, which share one path.

#include <algorithm>
#include <vector>

#include <atasker/error.hpp>
#include <atasker/log.hpp>

#include "core/supervisor_impl.hpp"

namespace atasker {

using detail::Record;
using detail::TaskBase;
using detail::wall_now;

bool TaskSupervisor::Impl::on_own_thread() const noexcept {
    return std::any_of(lanes.begin(), lanes.end(), [](const auto& l) { return l->runs_this_thread(); });
}

bool TaskSupervisor::Impl::drained() const noexcept {
    return std::all_of(lanes.begin(), lanes.end(), [](const auto& l) {
        return l->admission().running() == 0 && l->admission().queued() == 0;
    });
}

void TaskSupervisor::Impl::cancel_all_locked(std::vector<TaskBase*>& to_settle, std::vector<TaskBase*>& to_stop) {
    const auto now = wall_now();
    for (const auto& l : lanes) {
        for (TaskBase* t = l->admission().take_all(); t != nullptr;) {
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
    for (TaskBase* t : to_settle) {
        settle(t, {});
        end_settle();
    }
    for (TaskBase* t : to_stop) {
        (void)lane(t->type).request_stop(t);
        t->release();
    }
    to_settle.clear();
    to_stop.clear();
}

bool TaskSupervisor::Impl::stop(const StopOptions& o) {
    // A task (or a completion callback) on one of the lanes' threads: that
    // thread can neither be waited for nor joined by itself.
    const bool own_thread = on_own_thread();
    if (own_thread && o.wait)
        throw Error("stop() waits for every running task, and it was called from one of this supervisor's own "
                    "tasks (or a completion callback); pass {.wait = false}, or call stop() from another thread");
    std::vector<TaskBase*> to_settle;
    std::vector<TaskBase*> to_stop;
    std::unique_lock lock(mutex);
    if (stopping) {
        // Another thread's stop() is under way; from a lane thread it may be
        // waiting for this very task, so only the others wait for it to end.
        if (own_thread) return false;
        state_cv.wait(lock, [this] { return !stopping; });
    }
    // Workers, then aloops, stop while the lanes still serve what they put.
    auto in_order = services;
    std::stable_sort(in_order.begin(), in_order.end(),
                     [](const detail::Service* a, const detail::Service* b) { return a->stop_order() < b->stop_order(); });
    lock.unlock();
    for (auto* service : in_order) service->stop_service();
    lock.lock();
    if (!active && std::all_of(lanes.begin(), lanes.end(), [](const auto& l) { return l->empty(); })) {
        // Nothing runs; a lane may still hold what it ran on (worker processes).
        for (const auto& l : lanes) l->join(lock, false);
        return true;
    }
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
    for (const auto& l : lanes) l->begin_stop();
    lock.unlock();
    timers.stop();  // without the lock: a timer callback may be waiting for it
    lock.lock();
    for (const auto& l : lanes) l->join(lock, finished && !own_thread);
    stopping = false;
    state_cv.notify_all();
    return finished;
}

void TaskSupervisor::Impl::shut_down() noexcept {
    try {
        stop({.wait = true, .cancel_tasks = true, .timeout = std::nullopt});
        // Threads a timed-out or non-waiting stop() left running end now.
        std::unique_lock lock(mutex);
        for (const auto& l : lanes) {
            l->begin_stop();
            l->join(lock, true);
        }
    } catch (const std::exception& e) {
        log(LogLevel::critical, "task supervisor could not stop cleanly: {}", e.what());
    }
}

void TaskSupervisor::Impl::abandon() noexcept {
    try {
        stop({.wait = false, .cancel_tasks = true, .timeout = std::nullopt});
    } catch (const std::exception& e) {
        log(LogLevel::critical, "task supervisor could not stop cleanly: {}", e.what());
    }
}

}  // namespace atasker
