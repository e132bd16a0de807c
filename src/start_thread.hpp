#pragma once
// Starting a thread of the library's own: the system's refusal becomes an
// atasker::SystemError that names whose thread it was, as every error the
// library throws is an atasker::Error.

#include <system_error>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include <atasker/error.hpp>

namespace atasker::detail {

/// std::thread(fn), or SystemError "could not start <whose> thread: ...".
template <class F>
[[nodiscard]] std::thread start_thread(std::string_view whose, F&& fn) {
    try {
        return std::thread(std::forward<F>(fn));
    } catch (const std::system_error& e) {
        throw SystemError(e.code(), fmt::format("could not start {} thread: {}; the system is out of threads or "
                                                "memory (see ulimit -u and /proc/sys/kernel/threads-max)",
                                                whose, e.code().message()));
    }
}

}  // namespace atasker::detail
