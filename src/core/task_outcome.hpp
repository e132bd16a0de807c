#pragma once
// How a task that ran ended: the final status stored with its outcome, and
// its error message. Computed outside the supervisor's lock.

#include <string>
#include <utility>

#include <atasker/detail/task_base.hpp>

namespace atasker::detail {

inline std::pair<TaskStatus, std::string> outcome_of(const TaskBase& task) {
    return {task.end_status(), describe(task.error())};
}

}  // namespace atasker::detail
