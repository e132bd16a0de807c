#include <atasker/error.hpp>

#include <atasker/detail/bytes.hpp>
#include <atasker/detail/task_base.hpp>

#include <fmt/format.h>

#include <utility>

namespace atasker {

// Out-of-line destructors anchor each class's vtable and type_info in the
// library, so catch clauses work across the shared-library boundary.
Error::~Error() = default;
TimeoutError::~TimeoutError() = default;
CanceledError::~CanceledError() = default;

SystemError::SystemError(std::error_code code, const std::string& what) : Error(what), code_(code) {}
SystemError::~SystemError() = default;

RemoteError::RemoteError(std::string type_name, const std::string& message)
    : Error(message), type_name_(std::move(type_name)) {}
RemoteError::~RemoteError() = default;

MapError::MapError(std::size_t index, std::size_t count, std::exception_ptr error, std::size_t failures)
    : Error(fmt::format("at::map: item {} of {} failed{}: {}", index, count,
                        failures > 1 ? fmt::format(" (the first of {} that failed)", failures) : std::string(),
                        detail::describe(error))),
      index_(index),
      error_(std::move(error)),
      failures_(failures) {}
MapError::~MapError() = default;

TaskFailedError::TaskFailedError(TaskId id, std::string name, std::size_t index, const std::string& what)
    : Error(what), id_(id), name_(std::move(name)), index_(index) {}
TaskFailedError::~TaskFailedError() = default;

namespace {
std::string group_message(const std::vector<TaskFailure>& failures) {
    std::string out = fmt::format("{} of the group's tasks failed: ", failures.size());
    for (std::size_t i = 0; i < failures.size(); ++i) {
        const auto& f = failures[i];
        out += fmt::format("{}task {} '{}': {}", i == 0 ? "" : "; ", f.id, f.name, detail::describe(f.error));
    }
    return out;
}
}  // namespace

TaskGroupError::TaskGroupError(std::vector<TaskFailure> failures)
    : Error(group_message(failures)),
      failures_(std::make_shared<const std::vector<TaskFailure>>(std::move(failures))) {}
TaskGroupError::~TaskGroupError() = default;

namespace detail {
SlotOverflow::~SlotOverflow() = default;
}  // namespace detail

}  // namespace atasker
