#pragma once
// How a task that ran ended: its final status and error message, read from
// the outcome stored in it. Computed outside the supervisor's lock.

#include <string>
#include <utility>

#include <atasker/detail/task_base.hpp>
#include <atasker/error.hpp>

namespace atasker::detail {

inline std::pair<TaskStatus, std::string> outcome_of(const TaskBase& task) {
    if (!task.error()) return {TaskStatus::completed, {}};
    try {
        std::rethrow_exception(task.error());
    } catch (const CanceledError& e) {
        return {TaskStatus::canceled, e.what()};
    } catch (...) {
        return {TaskStatus::failed, describe(task.error())};
    }
}

}  // namespace atasker::detail
