#pragma once
/// \file error.hpp
/// The exceptions the library throws. Every one derives from atasker::Error.

#include <cstddef>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <atasker/export.hpp>
#include <atasker/priority.hpp>

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

/// at::map(): an item's call failed. what() names the item ("at::map: item
/// 17 of 1000 failed: ..."); error() is the item's own exception (a
/// RemoteError for a process task), to rethrow or inspect. When several
/// items failed, this is the one with the lowest index, and failures() says
/// how many did. Every other item ran.
class ATASKER_API MapError : public Error {
public:
    /// Item `index` of `count` failed with `error`; `failures` items failed in all.
    MapError(std::size_t index, std::size_t count, std::exception_ptr error, std::size_t failures);
    ~MapError() override;
    /// The failed item's position in the inputs.
    [[nodiscard]] std::size_t index() const noexcept { return index_; }
    /// The failed item's exception.
    [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }
    /// How many items failed.
    [[nodiscard]] std::size_t failures() const noexcept { return failures_; }

private:
    std::size_t index_;
    std::exception_ptr error_;
    std::size_t failures_;
};

/// wait_completed() on several tasks: one of them failed (or was canceled).
/// what() names the task, "task 12 'parse' (thread) failed: bad input 7";
/// the task's own exception is nested in it, with its own type:
/// `std::rethrow_if_nested(e)` (or e.rethrow_nested()) rethrows it.
class ATASKER_API TaskFailedError : public Error, public std::nested_exception {
public:
    /// Made while the task's exception is being handled (in a catch block),
    /// which it nests; `what` is the whole message.
    TaskFailedError(TaskId id, std::string name, std::size_t index, const std::string& what);
    ~TaskFailedError() override;
    /// The failed task's id.
    [[nodiscard]] TaskId task_id() const noexcept { return id_; }
    /// Its name (empty when it had none, or its record was forgotten).
    [[nodiscard]] const std::string& task_name() const noexcept { return name_; }
    /// Its position in the list that was waited for.
    [[nodiscard]] std::size_t index() const noexcept { return index_; }

private:
    TaskId id_;
    std::string name_;
    std::size_t index_;
};

/// One failed task, as TaskGroupError lists it.
struct TaskFailure {
    TaskId id = 0;               ///< the task's id
    std::string name{};          ///< its name (an MpTask's name by default; empty when it had none)
    std::exception_ptr error{};  ///< what it threw (RemoteError for a process task), with its own type
};

/// TaskGroup::wait(): tasks of the group failed. failures() lists every one,
/// first to fail first; tasks the group canceled because of them are not
/// failures and are not listed. what() says how many, and names each.
class ATASKER_API TaskGroupError : public Error {
public:
    /// An error listing `failures` (at least one).
    explicit TaskGroupError(std::vector<TaskFailure> failures);
    ~TaskGroupError() override;
    /// Every failure, in the order the tasks failed.
    [[nodiscard]] const std::vector<TaskFailure>& failures() const noexcept { return *failures_; }

private:
    std::shared_ptr<const std::vector<TaskFailure>> failures_;  // shared: copying an exception must not throw
};

}  // namespace atasker
