#include <atasker/error.hpp>

#include <atasker/detail/bytes.hpp>

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

namespace detail {
SlotOverflow::~SlotOverflow() = default;
}  // namespace detail

}  // namespace atasker
