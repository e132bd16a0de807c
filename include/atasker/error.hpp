#pragma once
/// \file error.hpp
/// The exceptions the library throws. Every one derives from atasker::Error.

#include <stdexcept>
#include <string>
#include <system_error>

#include <atasker/export.hpp>

namespace atasker {

/// Base of every exception atasker throws (a std::runtime_error).
class ATASKER_API Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
    ~Error() override;
};

/// The system refused a resource the library needed: a thread, a process,
/// memory to map. code() carries the errno (EAGAIN when out of threads).
class ATASKER_API SystemError : public Error {
public:
    /// An error saying `what`, caused by the system's `code`.
    SystemError(std::error_code code, const std::string& what);
    ~SystemError() override;
    /// The system's error code.
    [[nodiscard]] const std::error_code& code() const noexcept { return code_; }

private:
    std::error_code code_;
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
