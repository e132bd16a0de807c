// examples/remote.cpp run as it is meant to be: a redis-server, two worker
// hosts (`remote worker <url>`) and a client (`remote client <url>`), each a
// process of its own; the client checks its results and exits 0, and each
// worker exits 0 on SIGTERM. examples/meson.build names the example's binary
// in ATASKER_REMOTE_EXAMPLE.
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include <pthread.h>
#include <sys/wait.h>

#include "child_process.hpp"
#include "redis_server.hpp"

namespace {

/// Waits for `pid` to exit; its exit code, or 128 + the signal that ended it.
int wait_exit(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("the remote example: two worker hosts serve a client, then stop on SIGTERM" * doctest::timeout(120)) {
    const char* example = std::getenv("ATASKER_REMOTE_EXAMPLE");
    REQUIRE(example != nullptr);
    test_support::RedisServer server;
    // The workers start with SIGTERM blocked (a mask survives exec): one
    // sent before a worker has set up its handling (the client may be done
    // by then) waits for serve_remote(), which takes it as a stop, instead
    // of ending the process at its default action.
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigset_t old{};
    ::pthread_sigmask(SIG_BLOCK, &term, &old);
    const pid_t a = test_support::spawn_child({example, "worker", server.url()});
    const pid_t b = test_support::spawn_child({example, "worker", server.url()});
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    const pid_t client = test_support::spawn_child({example, "client", server.url()});
    CHECK(wait_exit(client) == 0);
    ::kill(a, SIGTERM);
    ::kill(b, SIGTERM);
    CHECK(wait_exit(a) == 0);
    CHECK(wait_exit(b) == 0);
}
