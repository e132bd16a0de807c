#include "remote/stop_signals.hpp"

#include <atomic>
#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

#include <atasker/error.hpp>

#include "sync/system_error.hpp"

namespace atasker::detail {
namespace {

std::atomic<int> signal_pipe{-1};

extern "C" void on_stop_signal(int /*signal*/) {
    const int saved = errno;
    if (const int fd = signal_pipe.load(std::memory_order_relaxed); fd >= 0) {
        const char stop = 'T';
        (void)!::write(fd, &stop, 1);
    }
    errno = saved;
}

}  // namespace

StopSignals::StopSignals() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_system_error(errno, "serve_remote: cannot make a pipe for SIGTERM");
    read_ = fds[0];
    write_ = fds[1];
    int expected = -1;
    if (!signal_pipe.compare_exchange_strong(expected, write_)) {
        ::close(read_);
        ::close(write_);
        throw Error("serve_remote() already runs in this process; run one per process");
    }
    struct sigaction stop {};
    stop.sa_handler = &on_stop_signal;
    sigemptyset(&stop.sa_mask);
    stop.sa_flags = SA_RESTART;
    ::sigaction(SIGTERM, &stop, &old_term_);
    ::sigaction(SIGINT, &stop, &old_int_);
}

StopSignals::~StopSignals() {
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGINT, &old_int_, nullptr);
    signal_pipe.store(-1);
    ::close(read_);
    ::close(write_);
}

bool StopSignals::wait() noexcept {
    char got = 0;
    for (;;) {
        const ssize_t n = ::read(read_, &got, 1);
        if (n == 1) return got == 'T';
        if (n < 0 && errno == EINTR) continue;
        return false;
    }
}

void StopSignals::quit() noexcept {
    const char quit = 'Q';
    (void)!::write(write_, &quit, 1);
}

}  // namespace atasker::detail
