// Retries (TaskOptions::retries, retry_delay): a failed run of a thread or a
// process task runs again after a delay that doubles, holding no slot
// meanwhile; handles, callbacks and waits see only the final outcome. A
// process task's worker that dies is a failed attempt: the task runs again
// in a fresh worker.
//
// Own main: at::init() must fork the zygote before anything starts a thread.

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include <atasker/atasker.hpp>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::LogCapture;

namespace {

struct MyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Appends a byte to the file at `path` and returns how many it holds now:
// the attempts made so far, counted across worker processes.
long count_attempt(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    const char byte = 'x';
    struct stat st {};
    const bool ok = ::write(fd, &byte, 1) == 1 && ::fstat(fd, &st) == 0;
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot write " + path);
    return static_cast<long>(st.st_size);
}

// Kills its own worker process on its first `deaths` attempts, then returns
// the attempt it succeeded on.
long die_then_succeed(std::string path, long deaths) {
    const long attempt = count_attempt(path);
    if (attempt <= deaths) ::kill(::getpid(), SIGKILL);
    return attempt;
}

const at::MpTask die_first{"die_first", &die_then_succeed};

std::string fresh_path(const char* name) {
    std::string path = "/tmp/atasker-retry-" + std::to_string(::getpid()) + "-" + name;
    ::unlink(path.c_str());
    return path;
}

}  // namespace

TEST_CASE("retry: a thread task that fails twice, then succeeds, returns its result after 3 attempts" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::atomic<int> calls{0};
    auto t = at::background_task(
        [&calls] {
            if (++calls < 3) throw std::runtime_error("not yet");
            return 42;
        },
        {.supervisor = &sup, .retries = 3, .retry_delay = 1ms})();
    CHECK(t.get() == 42);
    CHECK(calls == 3);
    const auto info = t.info();
    REQUIRE(info);
    CHECK(info->status == at::TaskStatus::completed);
    CHECK(info->attempts == 3);
    CHECK(info->error.empty());
    sup.stop();
}

TEST_CASE("retry: a task that fails every attempt throws its own exception, and its record counts the attempts" *
          doctest::timeout(30)) {
    LogCapture log;
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});  // each retry line is logged before the next attempt runs
    sup.start();
    std::atomic<int> calls{0};
    std::atomic<int> callbacks{0};
    std::latch called{1};
    auto t = at::background_task([&calls]() -> int { throw MyError("boom " + std::to_string(++calls)); },
                                 {.name = "flaky", .supervisor = &sup, .retries = 2})
                 .callback([&](const at::Task<int>&) {
                     ++callbacks;
                     called.count_down();
                 })();
    CHECK_THROWS_WITH_AS((void)t.get(), "boom 3", MyError);
    CHECK(calls == 3);
    called.wait();  // the callback may run after get() has returned
    sup.stop();     // every callback has run: the final outcome's only
    CHECK(callbacks == 1);
    const auto info = t.info();
    REQUIRE(info);
    CHECK(info->status == at::TaskStatus::failed);
    CHECK(info->attempts == 3);
    CHECK(info->error == "boom 3 (after 3 attempts)");
    const auto id = t.id();
    CHECK(log.at(at::LogLevel::warning) ==
          std::vector<std::string>{fmt::format("task {} 'flaky' (thread) failed on attempt 1, runs again in 0ms: boom 1", id),
                                   fmt::format("task {} 'flaky' (thread) failed on attempt 2, runs again in 0ms: boom 2", id)});
}

TEST_CASE("retry: the wait before each retry doubles" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::mutex m;
    std::vector<std::chrono::steady_clock::time_point> runs;
    auto t = at::background_task(
        [&] {
            std::lock_guard lock(m);
            runs.push_back(std::chrono::steady_clock::now());
            throw std::runtime_error("again");
        },
        {.supervisor = &sup, .retries = 3, .retry_delay = 20ms})();
    CHECK_THROWS_AS(t.get(), std::runtime_error);
    std::lock_guard lock(m);
    REQUIRE(runs.size() == 4);
    CHECK(runs[1] - runs[0] >= 20ms);
    CHECK(runs[2] - runs[1] >= 40ms);
    CHECK(runs[3] - runs[2] >= 80ms);
    CHECK(t.info()->attempts == 4);
    sup.stop();
}

TEST_CASE("retry: a task waiting to retry holds no slot, and cancel() ends it there" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    std::latch ran{1};
    std::atomic<int> calls{0};
    std::atomic<int> callbacks{0};
    auto flaky = at::background_task(
                     [&]() -> int {
                         ++calls;
                         ran.count_down();
                         throw std::runtime_error("first");
                     },
                     {.supervisor = &sup, .retries = 5, .retry_delay = 1h})
                     .callback([&callbacks](const at::Task<int>&) { ++callbacks; })();
    ran.wait();
    // The single slot runs another task while the first waits to retry.
    CHECK(at::background_task([] { return 7; }, {.supervisor = &sup})().get() == 7);
    CHECK(flaky.status() == at::TaskStatus::delayed);
    CHECK_FALSE(flaky.ready());
    CHECK(flaky.info()->attempts == 1);
    const auto info = sup.get_info();
    CHECK(info.delayed == 1);
    CHECK(info.thread_pool.running == std::array<std::size_t, at::priority_levels>{});
    CHECK(flaky.cancel());
    CHECK_THROWS_AS((void)flaky.get(), at::CanceledError);
    CHECK(flaky.status() == at::TaskStatus::canceled);
    CHECK(flaky.info()->attempts == 1);
    CHECK(flaky.info()->error == fmt::format("task {} was canceled while it waited to run again", flaky.id()));
    CHECK(calls == 1);
    CHECK(callbacks == 1);
    CHECK(sup.wait_idle(10s));
    sup.stop();
}

TEST_CASE("retry: stop() during a retry delay ends the task as canceled" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    std::latch ran{1};
    auto flaky = at::background_task(
        [&ran] {
            ran.count_down();
            throw std::runtime_error("first");
        },
        {.supervisor = &sup, .retries = 1, .retry_delay = 1h})();
    ran.wait();
    at::background_task([] {}, {.supervisor = &sup})().get();  // after the failed run, on the single slot
    CHECK(flaky.status() == at::TaskStatus::delayed);
    CHECK(sup.stop());
    CHECK_THROWS_AS(flaky.get(), at::CanceledError);
    CHECK(flaky.status() == at::TaskStatus::canceled);
    CHECK(flaky.info()->attempts == 1);
}

TEST_CASE("retry: a running task that is canceled is not retried" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::latch running{1};
    std::atomic<int> calls{0};
    auto t = at::background_task(
        [&](std::stop_token token) {
            ++calls;
            running.count_down();
            test_support::wait_for_stop(token);
            throw std::runtime_error("gave up");
        },
        {.supervisor = &sup, .retries = 3})();
    running.wait();
    CHECK(t.cancel());
    CHECK_THROWS_WITH_AS(t.get(), "gave up", std::runtime_error);
    CHECK(calls == 1);
    CHECK(t.info()->attempts == 1);
    sup.stop();
}

TEST_CASE("retry: a negative retry_delay or timeout is refused, saying what to pass" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    CHECK_THROWS_WITH_AS((void)at::background_task([] {}, {.supervisor = &sup, .retries = 1, .retry_delay = -1ms})(),
                         "a task's retry_delay must not be negative; pass 0 to retry at once", at::Error);
    CHECK_THROWS_WITH_AS((void)at::background_task([] {}, {.supervisor = &sup, .timeout = -1ms})(),
                         "a task's timeout must not be negative; pass 0 for no limit", at::Error);
    CHECK(sup.get_info().records == 0);
    sup.stop();
}

TEST_CASE("retry: a process task whose worker dies runs again in a fresh worker" * doctest::timeout(60)) {
    at::task_supervisor.set_mp_pool({.pool_size = 2});
    at::task_supervisor.start();
    const std::string path = fresh_path("die-twice");
    auto t = at::background_task(die_first, {.retries = 3, .retry_delay = 1ms})(path, 2L);
    CHECK(t.get() == 3);
    CHECK(t.info()->attempts == 3);
    CHECK(t.info()->status == at::TaskStatus::completed);
    ::unlink(path.c_str());
}

TEST_CASE("retry: a process task whose worker dies every attempt fails with RemoteError after them all" *
          doctest::timeout(60)) {
    const std::string path = fresh_path("die-always");
    auto t = at::background_task(die_first, {.retries = 2})(path, 100L);
    CHECK_THROWS_WITH_AS((void)t.get(), "worker process killed by signal 9 (SIGKILL)", at::RemoteError);
    const auto info = t.info();
    REQUIRE(info);
    CHECK(info->attempts == 3);
    CHECK(info->error == "signal: worker process killed by signal 9 (SIGKILL) (after 3 attempts)");
    CHECK(count_attempt(path) == 4);  // three runs, and this count
    ::unlink(path.c_str());
    CHECK(at::task_supervisor.stop());
    at::shutdown();
}

int main(int argc, char** argv) {
    at::init({.max_workers = 4});
    doctest::Context context(argc, argv);
    return context.run();
}
