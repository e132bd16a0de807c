#pragma once
// StopSignals: while it lives, SIGTERM and SIGINT do not end the process
// but make wait() return, so that a worker can finish what it holds. One at
// a time in a process.
//
// The signals are blocked in the thread that makes it, and so in every
// thread that thread starts afterwards; wait() reads them from a signalfd.
// A thread started before, which does not block them, may take one: a
// handler then writes it to a pipe wait() also reads. The handlers and the
// mask come back with the destructor (on the thread that made it).

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
    int signals_ = -1;  // signalfd of SIGTERM and SIGINT
    int read_ = -1;
    int write_ = -1;
    struct sigaction old_term_ {};
    struct sigaction old_int_ {};
    sigset_t old_mask_{};  // the making thread's
};

}  // namespace atasker::detail
