#pragma once
// A redis-server of the test's own: started as a plain child process on a
// free port of 127.0.0.1, persistence off, killed at the end. tests/meson.build
// names the binary in ATASKER_REDIS_SERVER and defines the remote tests only
// where it found one; a server that cannot start fails the test.
//
// Ready means the server said so on its standard output ("Ready to accept
// connections"), which the fixture reads: no retry loop, no sleep.

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child_process.hpp"

namespace test_support {

/// A port of 127.0.0.1 that nothing listened on a moment ago (the kernel's
/// pick for a socket bound to port 0).
inline int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("free_port: socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("free_port: bind failed");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

class RedisServer {
public:
    /// Starts the server and returns once it accepts connections.
    /// \throws std::runtime_error with the server's output when it exits or
    /// stays silent for `ready_within`.
    explicit RedisServer(std::chrono::seconds ready_within = std::chrono::seconds(20)) : port_(free_port()) {
        start(ready_within);
    }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;
    ~RedisServer() { stop(); }

    /// Starts a stopped server again on the same port, empty (persistence
    /// is off), as a restarted server comes back.
    void restart(std::chrono::seconds ready_within = std::chrono::seconds(20)) {
        stop();
        start(ready_within);
    }

    [[nodiscard]] int port() const noexcept { return port_; }
    /// redis://127.0.0.1:<port>, or with `/db`.
    [[nodiscard]] std::string url(int db = 0) const {
        std::string u = "redis://127.0.0.1:";
        u += std::to_string(port_);
        if (db != 0) {
            u += '/';
            u += std::to_string(db);
        }
        return u;
    }
    /// Kills the server at once (SIGKILL) and waits for it to be gone.
    void stop() noexcept {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
    }

private:
    void start(std::chrono::seconds ready_within) {
        const char* from_env = std::getenv("ATASKER_REDIS_SERVER");
        const std::string binary = from_env != nullptr && *from_env != '\0' ? from_env : "redis-server";
        const std::string port = std::to_string(port_);
        std::vector<std::string> args = {binary,    "--port", port,         "--bind",      "127.0.0.1",
                                         "--save",  "",       "--appendonly", "no",        "--daemonize",
                                         "no",      "--logfile", "",         "--loglevel", "notice"};
        std::array<int, 2> out{};
        if (::pipe2(out.data(), O_CLOEXEC) != 0) throw std::runtime_error("RedisServer: pipe2 failed");
        try {
            pid_ = spawn_child(std::move(args), out[1]);  // the server dies with the test, however the test ends
        } catch (...) {
            ::close(out[0]);
            ::close(out[1]);
            throw;
        }
        ::close(out[1]);
        std::string said;
        const bool ready = wait_ready(out[0], said, ready_within);
        // Past this point the server's log goes nowhere: it ignores SIGPIPE.
        ::close(out[0]);
        if (!ready) {
            stop();
            throw std::runtime_error("redis-server (" + binary + ") did not get ready on port " + port +
                                     "; it said:\n" + said);
        }
    }

    static bool wait_ready(int fd, std::string& said, std::chrono::seconds within) {
        const auto deadline = std::chrono::steady_clock::now() + within;
        std::array<char, 4096> buffer{};
        for (;;) {
            if (said.find("Ready to accept connections") != std::string::npos) return true;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
            const int n = ::poll(&p, 1, static_cast<int>(left.count()));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            const ssize_t got = ::read(fd, buffer.data(), buffer.size());
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) return false;  // the server exited
            said.append(buffer.data(), static_cast<std::size_t>(got));
        }
    }

    int port_;
    pid_t pid_ = -1;
};

}  // namespace test_support
