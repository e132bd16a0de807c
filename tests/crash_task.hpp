#pragma once
// A process task that kills its own worker process the way a test asks:
// 0 SIGSEGV, 1 SIGKILL, 2 abort() (SIGABRT), otherwise exit(3). Each test
// executable that includes this registers it once, named "crash".

#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string_view>
#include <utility>

#include <atasker/mp_task.hpp>

namespace test_support {

// The crash under test; UBSan would only report it before it happens.
__attribute__((no_sanitize("undefined"))) inline void write_through_null() {
    volatile int* p = nullptr;
    *p = 1;
}

inline int crash_worker(int how) {
    switch (how) {
        case 0: write_through_null(); break;
        case 1: ::kill(::getpid(), SIGKILL); break;
        case 2: std::abort();
        default: std::exit(3);
    }
    return 0;
}

inline const atasker::MpTask crash{"crash", &crash_worker};

/// Each way `crash` can end its worker, and the error its task then fails with.
inline constexpr std::array<std::pair<int, std::string_view>, 4> crash_deaths{{
    {0, "worker process killed by signal 11 (SIGSEGV)"},
    {1, "worker process killed by signal 9 (SIGKILL)"},
    {2, "worker process killed by signal 6 (SIGABRT)"},
    {3, "worker process exited with code 3"},
}};

}  // namespace test_support
