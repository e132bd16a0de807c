// A put that runs out of memory, at whichever of its allocations: it throws
// std::bad_alloc and leaves nothing behind (no record, no delayed count), or
// it succeeds and its task runs. This executable replaces the global
// operator new with one that can fail the n-th allocation of this thread.
#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <chrono>
#include <cstdlib>
#include <new>
#include <string>

#include "test_support.hpp"

namespace {
// > 0: the allocation that brings it to 0 fails; otherwise no failure.
thread_local long fail_countdown = 0;
}  // namespace

void* operator new(std::size_t size) {
    if (fail_countdown > 0 && --fail_countdown == 0) throw std::bad_alloc();
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace at = atasker;
using namespace std::chrono_literals;

namespace {

/// Puts fn with `options`, failing the k-th allocation of the put for k = 1,
/// 2, ... until a put allocates less than k times. Each failed put must leave
/// the supervisor as it was; each successful one must run. Returns how many
/// puts failed.
template <class Check>
int put_failing_each_allocation(at::TaskSupervisor& sup, const at::TaskOptions& options, Check&& after_success) {
    int failed = 0;
    for (long k = 1; k < 1000; ++k) {
        const at::SupervisorInfo before = sup.get_info();
        fail_countdown = k;
        try {
            auto task = at::background_task([] { return 7; }, options)();
            const bool every_allocation_passed = fail_countdown > 0;
            fail_countdown = 0;
            CHECK(task.get() == 7);
            after_success();
            if (every_allocation_passed) return failed;
        } catch (const std::bad_alloc&) {
            fail_countdown = 0;
            ++failed;
            const at::SupervisorInfo now = sup.get_info();
            CAPTURE(k);
            CHECK(now.records == before.records);
            CHECK(now.delayed == 0);
        }
    }
    FAIL("a put allocated 1000 times or more");
    return failed;
}

}  // namespace

TEST_CASE("out of memory: a named, delayed put that cannot allocate throws bad_alloc and leaves no record" *
          doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2, .min_size = 2});  // no thread to start during a put
    sup.start();
    at::TaskOptions options;
    options.name = std::string(100, 'n');  // long enough to allocate
    options.delay = 1ms;
    options.supervisor = &sup;
    const int failed = put_failing_each_allocation(sup, options, [] {});
    CHECK(failed > 0);  // the put did allocate, and each failure was seen
    sup.stop();
}

TEST_CASE("out of memory: a task whose wait thresholds cannot be set is queued without them, and the log says so" *
          doctest::timeout(60)) {
    test_support::LogCapture log;
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2, .min_size = 2});
    sup.set_wait_timeouts({.warning = 1h, .critical = 2h});
    sup.start();
    at::TaskOptions options;
    options.supervisor = &sup;
    bool thresholds_lost = false;
    (void)put_failing_each_allocation(sup, options, [&] {
        for (const auto& [level, line] : log.lines())
            if (line.find("without their wait-time thresholds") != std::string::npos) thresholds_lost = true;
    });
    CHECK(thresholds_lost);  // some put lost only its thresholds, and its task ran
    sup.stop();
}
