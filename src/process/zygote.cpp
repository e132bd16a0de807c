#include "process/zygote.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "sync/system_error.hpp"
#include "process/worker_main.hpp"

namespace atasker::detail {

namespace {

[[noreturn]] void fail_system(const char* what) {
    throw_system_error(errno, what);
}

int open_pidfd(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

struct Child {
    pid_t pid = 0;
    std::uint64_t generation = 0;
};

// Blocking send of one reply, with an optional fd attached. False when the
// parent is gone.
bool send_reply(int sock, const ZygoteReply& reply, int fd) noexcept {
    iovec iov{const_cast<ZygoteReply*>(&reply), sizeof reply};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    for (;;) {
        if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return true;
        if (errno != EINTR) return false;
    }
}

// The worker's first steps after the zygote forked it.
[[noreturn]] void start_worker(const SharedSlots& slots, SlotView slot, pid_t zygote, int sock, int sigfd) noexcept {
    // PDEATHSIG follows the forking thread: the zygote's only thread, which
    // lives as long as the zygote. Checking getppid() afterwards closes the
    // window where the zygote died before the prctl.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != zygote) ::_exit(127);
    ::close(sock);
    ::close(sigfd);
    ::signal(SIGCHLD, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    run_worker(slot, slots);
}

[[noreturn]] void zygote_main(SharedSlots& slots, int sock, std::vector<Child>& children) noexcept {
    // Interactive interrupts are the parent's to handle; the pool ends when
    // the parent does (socket closed, PDEATHSIG).
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGQUIT, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    // SIGCHLD must not be SIG_IGN (inherited from the parent, perhaps):
    // that would reap workers before their status could be reported.
    ::signal(SIGCHLD, SIG_DFL);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &chld, nullptr);
    const int sigfd = ::signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0) ::_exit(126);
    const pid_t self = ::getpid();

    auto reap = [&](bool block) {
        for (;;) {
            int status = 0;
            const pid_t pid = ::waitpid(-1, &status, block ? 0 : WNOHANG);
            if (pid < 0 && errno == EINTR) continue;
            if (pid <= 0) return;
            for (std::size_t k = 0; k < children.size(); ++k) {
                if (children[k].pid != pid) continue;
                const ZygoteReply r{ZygoteReply::exited, static_cast<std::uint32_t>(k), children[k].generation, pid,
                                    status};
                children[k].pid = 0;
                if (!block && !send_reply(sock, r, -1)) return;
                break;
            }
        }
    };
    auto finish = [&]() {
        for (const Child& c : children)
            if (c.pid > 0) ::kill(c.pid, SIGKILL);
        reap(true);
        ::_exit(0);
    };

    pollfd fds[2] = {{sock, POLLIN, 0}, {sigfd, POLLIN, 0}};
    for (;;) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            finish();
        }
        if (fds[1].revents != 0) {
            signalfd_siginfo info[8];
            while (::read(sigfd, info, sizeof info) > 0) {
            }
            reap(false);
        }
        if (fds[0].revents == 0) continue;
        for (;;) {
            ZygoteRequest req{};
            const ssize_t n = ::recv(sock, &req, sizeof req, MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (n <= 0) finish();  // the parent closed its end or died
            if (n != sizeof req || req.op != ZygoteRequest::spawn || req.slot >= children.size()) continue;
            const pid_t pid = ::fork();
            if (pid == 0) start_worker(slots, slots.slot(req.slot), self, sock, sigfd);
            if (pid < 0) {
                const ZygoteReply r{ZygoteReply::spawn_failed, req.slot, req.generation, 0, errno};
                if (!send_reply(sock, r, -1)) finish();
                continue;
            }
            children[req.slot] = Child{pid, req.generation};
            // The worker is our unreaped child, so its pid cannot be reused
            // before this pidfd_open: the pidfd names exactly this worker.
            const int pidfd = open_pidfd(pid);
            const ZygoteReply r{pidfd >= 0 ? ZygoteReply::spawned : ZygoteReply::spawn_failed, req.slot,
                                req.generation, pid, pidfd >= 0 ? 0 : errno};
            if (pidfd < 0) ::kill(pid, SIGKILL);
            const bool sent = send_reply(sock, r, pidfd);
            if (pidfd >= 0) ::close(pidfd);
            if (!sent) finish();
        }
    }
}

}  // namespace

Zygote::Zygote(SharedSlots& slots) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        fail_system("cannot create the socket to the process pool's zygote");
    // Allocated before the fork: the zygote never allocates, so a lock held
    // by some other thread of the parent at fork time cannot stall it.
    std::vector<Child> children(slots.count());
    const pid_t parent = ::getpid();
    const bool main_thread = ::gettid() == parent;
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int e = errno;
        ::close(sv[0]);
        ::close(sv[1]);
        errno = e;
        fail_system("cannot fork the process pool's zygote");
    }
    if (pid == 0) {
        // PDEATHSIG follows the thread that forked us; only the main thread
        // is sure to live as long as the process. Otherwise the closed
        // socket alone tells the zygote that the parent is gone.
        if (main_thread && (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent)) ::_exit(127);
        ::close(sv[0]);
        zygote_main(slots, sv[1], children);
    }
    ::close(sv[1]);
    socket_ = sv[0];
    pid_ = pid;
}

Zygote::~Zygote() { shutdown(); }

void Zygote::shutdown() noexcept {
    if (socket_ < 0) return;
    ::close(socket_);
    socket_ = -1;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

void Zygote::send(const ZygoteRequest& request) const {
    for (;;) {
        if (::send(socket_, &request, sizeof request, MSG_NOSIGNAL) >= 0) return;
        if (errno != EINTR) fail_system("the process pool's zygote is gone; restart the program");
    }
}

int Zygote::receive(ZygoteReply& reply, int& fd) const {
    fd = -1;
    iovec iov{&reply, sizeof reply};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    for (;;) {
        const ssize_t n = ::recvmsg(socket_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n <= 0) return -1;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        if (n != sizeof reply) {
            if (fd >= 0) ::close(fd);
            fd = -1;
            continue;
        }
        return 1;
    }
}

}  // namespace atasker::detail
