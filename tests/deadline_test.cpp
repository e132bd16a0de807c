// Thread task deadlines (TaskOptions::timeout on a thread task): at the
// deadline, measured from the run's start, the run is asked to stop through
// its stop token; a run still going at its deadline ends as TimeoutError,
// whatever it returns after. A run that ends before keeps its outcome, and
// its deadline's timer goes with it.
//
// Timers fire in deadline order: a delayed task whose delay ends after a
// deadline has run once that deadline has been handled, which is how these
// tests know it passed without sleeping.

#include <doctest/doctest.h>

#include <atomic>
#include <latch>
#include <optional>
#include <stop_token>
#include <string>

#include <atasker/atasker.hpp>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;

namespace {

/// Returns once every timer `sup` set to fire within `d` from now has fired.
void let_pass(at::TaskSupervisor& sup, std::chrono::nanoseconds d) {
    at::background_task([] {}, {.delay = d, .supervisor = &sup})().get();
}

}  // namespace

TEST_CASE("deadline: a thread task still running at its deadline is asked to stop and ends as TimeoutError" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::atomic<bool> asked{false};
    auto t = at::background_task(
        [&asked](std::stop_token token) {
            asked = test_support::wait_for_stop(token);
            return 1;  // too late: the outcome is the timeout
        },
        {.supervisor = &sup, .timeout = 20ms})();
    CHECK_THROWS_WITH_AS((void)t.get(),
                         fmt::format("thread task {} was still running when its timeout of 20ms passed; it was "
                                     "asked to stop", t.id()).c_str(),
                         at::TimeoutError);
    CHECK(asked);
    const auto info = t.info();
    REQUIRE(info);
    CHECK(info->status == at::TaskStatus::failed);
    CHECK(info->attempts == 1);
    CHECK(info->error.starts_with(fmt::format("thread task {} was still running when its timeout", t.id())));
    sup.stop();
}

TEST_CASE("deadline: a task that ends before its deadline keeps its result, and no stop request follows" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::optional<std::stop_token> kept;
    auto t = at::background_task(
        [&kept](std::stop_token token) {
            kept = token;
            return 5;
        },
        {.supervisor = &sup, .timeout = 30ms})();
    CHECK(t.get() == 5);
    let_pass(sup, 60ms);  // the deadline would have come by now
    REQUIRE(kept);
    CHECK_FALSE(kept->stop_requested());
    CHECK(t.status() == at::TaskStatus::completed);
    CHECK(t.info()->error.empty());
    sup.stop();
}

TEST_CASE("deadline: a task without a stop token runs to its end and still ends as TimeoutError" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    test_support::Gate gate;
    std::latch started{1};
    auto t = at::background_task(
        [&] {
            started.count_down();
            gate.wait();
            return 2;
        },
        {.supervisor = &sup, .timeout = 20ms})();
    started.wait();
    let_pass(sup, 40ms);
    gate.open();
    CHECK_THROWS_AS((void)t.get(), at::TimeoutError);
    sup.stop();
}

TEST_CASE("deadline: each attempt of a retried task has its own deadline and a fresh stop token" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::atomic<int> calls{0};
    std::atomic<bool> second_asked{true};
    auto t = at::background_task(
        [&](std::stop_token token) {
            if (++calls == 1) {
                test_support::wait_for_stop(token);
                return 0;
            }
            second_asked = token.stop_requested();
            return 9;
        },
        {.supervisor = &sup, .timeout = 20ms, .retries = 1})();
    CHECK(t.get() == 9);
    CHECK(calls == 2);
    CHECK_FALSE(second_asked);
    CHECK(t.info()->attempts == 2);
    sup.stop();
}

TEST_CASE("deadline: a task canceled while running ends as canceled, not timed out" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::latch started{1};
    auto t = at::background_task(
        [&started](std::stop_token token) {
            started.count_down();
            test_support::wait_for_stop(token);
            throw at::CanceledError("stopped");
        },
        {.supervisor = &sup, .timeout = 1h, .retries = 2})();
    started.wait();
    CHECK(t.cancel());
    CHECK_THROWS_AS((void)t.get(), at::CanceledError);
    CHECK(t.status() == at::TaskStatus::canceled);
    CHECK(t.info()->attempts == 1);
    sup.stop();
}
