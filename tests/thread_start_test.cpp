// When the system refuses a thread: what start() and set_thread_pool() throw
// and what they leave behind. This executable replaces pthread_create with
// one that can refuse (EAGAIN, as when out of threads) once a countdown ends.
#include <doctest/doctest.h>

#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <string>

#include <atasker/atasker.hpp>

#include "test_support.hpp"

namespace {
// > 0: the creation that brings it to 0, and every one after, fails.
std::atomic<int> creations_left{0};
std::atomic<bool> refusing{false};
}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
    using Real = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
    static const auto real = reinterpret_cast<Real>(::dlsym(RTLD_NEXT, "pthread_create"));
    if (refusing.load() && creations_left.fetch_sub(1) <= 1) return EAGAIN;
    return real(thread, attr, start, arg);
}

namespace at = atasker;

namespace {
/// Lets `n` more threads start, then refuses every one until allow_all().
void allow_only(int n) {
    creations_left.store(n + 1);
    refusing.store(true);
}
void allow_all() { refusing.store(false); }

std::string message_of(const at::SystemError& e) { return e.what(); }
}  // namespace

TEST_CASE("thread start: a refused thread in start() throws SystemError and leaves no thread behind" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 4, .min_size = 4});
    allow_only(2);
    try {
        sup.start();
        FAIL("start() succeeded");
    } catch (const at::SystemError& e) {
        CHECK(e.code() == std::errc::resource_unavailable_try_again);
        CHECK(message_of(e) ==
              "could not start a thread pool thread (the system is out of threads or memory: see ulimit -u and "
              "/proc/sys/kernel/threads-max): Resource temporarily unavailable");
    }
    allow_all();
    CHECK_FALSE(sup.is_active());
    const at::SupervisorInfo info = sup.get_info();
    CHECK(info.thread_pool.workers == 0);  // the two that started were stopped and joined
    CHECK_THROWS_AS(at::background_task([] { return 1; }, {.supervisor = &sup})(), at::Error);
    sup.start();
    CHECK(sup.get_info().thread_pool.workers == 4);
    CHECK(at::background_task([] { return 2; }, {.supervisor = &sup})().get() == 2);
    sup.stop();
}

TEST_CASE("thread start: a refused set_thread_pool() keeps the options it had" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    const at::PoolOptions before{.pool_size = 3, .min_size = 1};
    sup.set_thread_pool(before);
    sup.start();
    allow_only(1);
    CHECK_THROWS_AS(sup.set_thread_pool({.pool_size = 8, .min_size = 6}), at::SystemError);
    allow_all();
    const at::SupervisorInfo info = sup.get_info();
    CHECK(info.thread_pool.options.pool_size == before.pool_size);
    CHECK(info.thread_pool.options.min_size == before.min_size);
    CHECK(at::background_task([] { return 3; }, {.supervisor = &sup})().get() == 3);
    sup.set_thread_pool({.pool_size = 8, .min_size = 6});  // allowed again: applies
    CHECK(sup.get_info().thread_pool.workers >= 6);
    sup.stop();
}

TEST_CASE("thread start: a refused timer thread fails the delayed put with SystemError, leaving nothing" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    const std::size_t records = sup.get_info().records;
    allow_only(0);
    CHECK_THROWS_AS(at::background_task([] { return 4; }, {.delay = std::chrono::milliseconds(1), .supervisor = &sup})(),
                    at::SystemError);
    allow_all();
    CHECK(sup.get_info().records == records);
    CHECK(sup.get_info().delayed == 0);
    auto later = at::background_task([] { return 5; }, {.delay = std::chrono::milliseconds(1), .supervisor = &sup})();
    CHECK(later.get() == 5);
    sup.stop();
}

TEST_CASE("thread start: a thread refused for a put task is logged and given back; the task runs on a running one" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2, .min_size = 1});
    sup.start();
    std::promise<std::string> logged;
    at::set_log_sink([&logged, first = true](at::LogLevel level, std::string_view line) mutable {
        if (level == at::LogLevel::error && first) {
            first = false;
            logged.set_value(std::string(line));
        }
    });
    // From here no thread starts: the pool keeps the one start() made, even
    // if that one was not yet waiting when the next put came.
    allow_only(0);
    test_support::Gate gate;
    auto busy = test_support::occupy(sup, gate);
    // The pool has room for a second thread: the put reserves one, which
    // starts once the supervisor's mutex is released, and is refused.
    auto waiting = at::background_task([] { return 6; }, {.supervisor = &sup})();
    const std::string line = logged.get_future().get();
    allow_all();
    at::set_log_sink({});
    CHECK(line ==
          "could not start a thread pool thread (the system is out of threads or memory: see ulimit -u and "
          "/proc/sys/kernel/threads-max): Resource temporarily unavailable; the task waits for a free one of the 1 "
          "running");
    CHECK(sup.get_info().thread_pool.workers == 1);  // the refused one is not counted
    CHECK(waiting.status() == at::TaskStatus::queued);
    gate.open();
    busy.get();
    CHECK(waiting.get() == 6);  // on the thread that was running
    sup.stop();
}
