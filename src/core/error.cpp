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

namespace detail {
SlotOverflow::~SlotOverflow() = default;
}  // namespace detail

}  // namespace atasker
