#include "remote/stop_signals.hpp"

#include <atomic>
#include <cerrno>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atasker/error.hpp>

#include "sync/system_error.hpp"

namespace atasker::detail {
namespace {

std::atomic<int> signal_pipe{-1};

sigset_t stop_set() noexcept {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
}

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
    const sigset_t set = stop_set();
    signals_ = ::signalfd(-1, &set, SFD_CLOEXEC);
    if (signals_ < 0) {
        const int error = errno;
        signal_pipe.store(-1);
        ::close(read_);
        ::close(write_);
        throw_system_error(error, "serve_remote: cannot make a signalfd for SIGTERM");
    }
    pthread_sigmask(SIG_BLOCK, &set, &old_mask_);
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
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    signal_pipe.store(-1);
    ::close(signals_);
    ::close(read_);
    ::close(write_);
}

bool StopSignals::wait() noexcept {
    for (;;) {
        pollfd fds[2] = {{.fd = signals_, .events = POLLIN, .revents = 0}, {.fd = read_, .events = POLLIN, .revents = 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        if ((fds[0].revents & POLLIN) != 0) {
            signalfd_siginfo info{};
            if (::read(signals_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) return true;
        }
        if ((fds[1].revents & POLLIN) != 0) {
            char got = 0;
            if (::read(read_, &got, 1) == 1) return got == 'T';
        }
    }
}

void StopSignals::quit() noexcept {
    const char quit = 'Q';
    (void)!::write(write_, &quit, 1);
}

}  // namespace atasker::detail
