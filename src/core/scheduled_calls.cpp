// TaskSupervisor::call_at and cancel_call: functions the supervisor's timers
// own and call on their thread.

#include <atasker/supervisor.hpp>

#include <functional>
#include <utility>

#include "core/supervisor_impl.hpp"

namespace atasker {

TimerId TaskSupervisor::call_at(std::chrono::steady_clock::time_point when, std::function<void()> fn) {
    return impl_->timers.schedule(when, std::move(fn));
}

bool TaskSupervisor::cancel_call(TimerId id) { return impl_->timers.cancel(id); }

}  // namespace atasker
