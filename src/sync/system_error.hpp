#pragma once
// What the library throws when the system refuses it something (a thread,
// a process, a mapping): an atasker::SystemError, which is an atasker::Error
// like everything the library throws, carrying the errno.

#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include <atasker/error.hpp>

namespace atasker::detail {

/// Throws SystemError "<what>: <the errno's description>".
[[noreturn]] inline void throw_system_error(int error, std::string_view what) {
    const std::error_code code(error, std::generic_category());
    throw SystemError(code, fmt::format("{}: {}", what, code.message()));
}

/// std::thread(fn), or SystemError "could not start <whose> thread: ...".
template <class F>
[[nodiscard]] std::thread start_thread(std::string_view whose, F&& fn) {
    try {
        return std::thread(std::forward<F>(fn));
    } catch (const std::system_error& e) {
        throw_system_error(e.code().value(),
                           fmt::format("could not start {} thread (the system is out of threads or memory: see "
                                       "ulimit -u and /proc/sys/kernel/threads-max)",
                                       whose));
    }
}

}  // namespace atasker::detail
