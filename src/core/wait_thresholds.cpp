// Wait-time thresholds: a warning, then a critical report, for a task that
// waits too long in its queue.

#include <memory>
#include <utility>

#include <fmt/chrono.h>

#include <atasker/error.hpp>
#include <atasker/log.hpp>

#include "core/supervisor_impl.hpp"

namespace atasker {

void TaskSupervisor::set_wait_timeouts(WaitTimeouts timeouts) {
    if (timeouts.warning.count() < 0 || timeouts.critical.count() < 0)
        throw Error("wait timeouts must not be negative; use 0 to turn a level off");
    const bool any = timeouts.warning.count() > 0 || timeouts.critical.count() > 0;
    auto shared = any ? std::make_shared<const WaitTimeouts>(std::move(timeouts)) : nullptr;
    std::lock_guard lock(impl_->mutex);
    impl_->has_wait_timeouts.store(shared != nullptr, std::memory_order_relaxed);
    impl_->wait_timeouts = std::move(shared);
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
        // once the mutex is released.
        mutex.defer_thresholds_lost();
    }
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
        const detail::Record* r = table.find(id);
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

}  // namespace atasker
