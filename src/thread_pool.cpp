#include "thread_pool.hpp"

#include <cstdint>

#include <fmt/chrono.h>

#include <atasker/log.hpp>

#include "task_outcome.hpp"
#include "task_table.hpp"

namespace atasker::detail {
namespace {
void store_progress(void* context, double value) noexcept {
    static_cast<std::atomic<float>*>(context)->store(static_cast<float>(value), std::memory_order_relaxed);
}
}  // namespace

void ThreadPool::configure(const PoolOptions& options) {
    options_ = options;
    while (count_ < options_.min_size) spawn();
    // Threads above a lowered capacity retire as they go idle.
    if (idle_ > signals_) cv_.notify_all();
}

void ThreadPool::wake(std::size_t startable, bool critical_waiting) noexcept {
    for (; startable > 0 && idle_ > signals_; --startable) {
        ++signals_;
        ++unsent_;
    }
    const std::size_t cap = options_.capacity();
    const std::size_t critical_cap = cap > SIZE_MAX - critical_extra_ ? SIZE_MAX : cap + critical_extra_;
    for (; startable > 0 && (count_ < cap || (critical_waiting && count_ < critical_cap)); --startable) {
        try {
            spawn();
        } catch (const std::exception& e) {
            // Logged by notify(), once the supervisor's lock is released.
            unsent_error_ = fmt::format("{} pool could not start a thread ({}); the task waits for a free one, "
                                        "{} threads running",
                                        type_, e.what(), count_);
            return;
        }
    }
}

void ThreadPool::spawn() {
    ++count_;
    ++starting_;
    threads_.emplace_front();
    auto self = threads_.begin();
    try {
        *self = std::thread([this, self] { main(self); });
    } catch (...) {
        threads_.erase(self);
        --count_;
        --starting_;
        throw;
    }
}

std::size_t ThreadPool::idle_limit() const noexcept {
    // One thread past capacity may wait idle (until idle_timeout) where
    // critical tasks grow the pool: the next critical task finds it awake
    // instead of paying for a thread's start on a saturated pool.
    const std::size_t cap = options_.capacity();
    const std::size_t standby = critical_extra_ > 0 ? 1 : 0;
    return cap > SIZE_MAX - standby ? SIZE_MAX : cap + standby;
}

void ThreadPool::begin_stop() {
    stopping_ = true;
    cv_.notify_all();
}

void ThreadPool::join(std::unique_lock<std::mutex>& lock, bool all) {
    if (all) exited_.wait(lock, [this] { return empty(); });
    std::list<std::thread> done;
    done.splice(done.end(), exited_threads_);
    lock.unlock();
    for (auto& t : done) t.join();
    lock.lock();
}

void ThreadPool::main(std::list<std::thread>::iterator self) {
    host_.thread_started(type_);
    std::unique_lock lock(mutex_);
    --starting_;
    bool retired = false;
    for (;;) {
        if (auto taken = host_.take_task(type_, wall_now()); taken.task != nullptr) {
            lock.unlock();
            run_chain(taken);
            lock.lock();
            continue;
        }
        if (stopping_ || count_ > idle_limit()) break;
        ++idle_;
        const bool may_retire = count_ > options_.min_size;
        const auto woken = [this] { return signals_ > 0 || stopping_ || count_ > idle_limit(); };
        bool signaled = true;
        if (may_retire) {
            signaled = cv_.wait_for(lock, options_.idle_timeout, woken);
        } else {
            cv_.wait(lock, woken);
        }
        --idle_;
        if (signals_ > 0) {
            --signals_;
            continue;
        }
        if (!signaled && count_ > options_.min_size) {
            retired = true;  // idle too long
            break;
        }
    }
    // No longer a pool thread from here on: a resize or a put must not count
    // on it while it says goodbye (a process pool thread ends its worker).
    --count_;
    ++exiting_;
    const std::size_t left = count_;
    const auto idle_timeout = options_.idle_timeout;
    lock.unlock();
    if (retired)
        log(LogLevel::debug, "{} pool: a thread retired after {} idle, {} left", type_,
            std::chrono::duration_cast<std::chrono::milliseconds>(idle_timeout), left);
    host_.thread_exiting(type_);
    lock.lock();
    --exiting_;
    exited_threads_.splice(exited_threads_.end(), threads_, self);
    exited_.notify_all();
}

void ThreadPool::run_chain(Host::Taken taken) {
    // Run, then record the end and take the next task in one critical section,
    // so a busy thread locks once per task.
    while (taken.task != nullptr) {
        TaskBase* task = taken.task;
        task->run(Progress(&store_progress, taken.progress));
        auto [status, error] = outcome_of(*task);
        const std::int64_t now = wall_now();  // ends one task and starts the next
        Host::Taken next;
        std::string log_line;
        {
            std::lock_guard lock(mutex_);
            log_line = host_.complete_task(task, status, std::move(error), now);
            next = host_.take_task(type_, now);
        }
        host_.settle_task(task, log_line);
        taken = next;
    }
}

}  // namespace atasker::detail
