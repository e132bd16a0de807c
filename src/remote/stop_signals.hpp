#pragma once
// StopSignals: while it lives, SIGTERM and SIGINT do not end the process
// but are written to a pipe that wait() reads, so that a worker can finish
// what it holds. The handlers it replaced come back with its destructor.
// One at a time in a process.

#include <csignal>

namespace atasker::detail {

class StopSignals {
public:
    /// \throws Error when another StopSignals lives, or a pipe cannot be made.
    StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;
    ~StopSignals();

    /// Blocks until SIGTERM or SIGINT arrived (true) or quit() was called
    /// (false).
    [[nodiscard]] bool wait() noexcept;
    /// Makes wait() return false. Thread-safe.
    void quit() noexcept;

private:
    int read_ = -1;
    int write_ = -1;
    struct sigaction old_term_ {};
    struct sigaction old_int_ {};
};

}  // namespace atasker::detail
