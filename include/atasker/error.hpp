#pragma once
/// \file error.hpp
/// The exceptions the library throws. Every one derives from atasker::Error.

#include <stdexcept>
#include <string>

#include <atasker/export.hpp>

namespace atasker {

/// Base of every exception atasker throws (a std::runtime_error).
class ATASKER_API Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
    ~Error() override;
};

/// A wait ran out of time, or a task ran past its run timeout.
class ATASKER_API TimeoutError : public Error {
public:
    using Error::Error;
    ~TimeoutError() override;
};

/// The task was canceled before it could finish; thrown by Task::get().
class ATASKER_API CanceledError : public Error {
public:
    using Error::Error;
    ~CanceledError() override;
};

/// A process task threw, or its worker process died. type_name() is the
/// original exception's type (or "signal"/"exit" for a dead worker) and what()
/// carries the original message.
class ATASKER_API RemoteError : public Error {
public:
    /// An error whose original exception had type `type_name` and what() `message`.
    RemoteError(std::string type_name, const std::string& message);
    ~RemoteError() override;
    /// The type of the exception thrown in the worker process.
    [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }

private:
    std::string type_name_;
};

}  // namespace atasker
