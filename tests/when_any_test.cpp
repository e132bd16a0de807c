// when_any(): the index of the first task to finish, waited for through
// TaskWatchers (no polling); watchers are taken back before it returns.
#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <array>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::Gate;

namespace {

/// Tasks that each return their index once their own gate opens.
struct GatedTasks {
    GatedTasks(at::TaskSupervisor& sup, int n) : gates(static_cast<std::size_t>(n)), open(static_cast<std::size_t>(n)) {
        for (int i = 0; i < n; ++i) {
            Gate& gate = gates[static_cast<std::size_t>(i)];
            tasks.push_back(at::background_task([&gate, i] { gate.wait(); return i; }, {.supervisor = &sup})());
        }
    }
    void release(int i) {
        gates[static_cast<std::size_t>(i)].open();
        open[static_cast<std::size_t>(i)] = true;
    }
    /// Opens the gates still closed, before the supervisor stops.
    void release_rest() {
        for (std::size_t i = 0; i < gates.size(); ++i)
            if (!open[i]) release(static_cast<int>(i));
    }
    std::vector<Gate> gates;
    std::vector<bool> open;
    std::vector<at::Task<int>> tasks;
};

}  // namespace

TEST_CASE("when_any: returns the index of the first task to finish while the others still run" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 4});
    sup.start();
    GatedTasks g(sup, 3);
    g.release(1);
    CHECK(at::when_any(g.tasks) == 1);
    CHECK(g.tasks[1].ready());
    CHECK(g.tasks[1].get() == 1);
    CHECK_FALSE(g.tasks[0].ready());
    CHECK_FALSE(g.tasks[2].ready());
    g.release(2);
    g.tasks[2].wait();
    CHECK(at::when_any(g.tasks, 10s) == 1);  // already finished: the lowest index, at once
    g.release(0);
    g.release_rest();
    sup.stop();
}

TEST_CASE("when_any: an already finished task returns at once, the lowest index first" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 4});
    sup.start();
    GatedTasks g(sup, 1);
    g.tasks.push_back(at::background_task([] { return 7; }, {.supervisor = &sup})());
    g.tasks.push_back(at::background_task([] { return 8; }, {.supervisor = &sup})());
    g.tasks[1].wait();
    g.tasks[2].wait();
    CHECK(at::when_any(g.tasks, 0ms) == 1);
    CHECK(at::when_any(g.tasks) == 1);
    g.release_rest();
    sup.stop();
}

TEST_CASE("when_any: a failed or canceled task counts as finished" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 4});
    sup.start();
    GatedTasks g(sup, 2);
    Gate fail;
    g.tasks.push_back(
        at::background_task([&]() -> int { fail.wait(); throw std::runtime_error("broken"); }, {.supervisor = &sup})());
    fail.open();
    CHECK(at::when_any(g.tasks) == 2);
    CHECK_THROWS_WITH_AS(g.tasks[2].get(), "broken", std::runtime_error);

    std::vector<at::Task<int>> later;
    later.push_back(g.tasks[0]);
    later.push_back(at::background_task([] { return 0; }, {.delay = 1h, .supervisor = &sup})());
    CHECK(later[1].cancel());
    CHECK(at::when_any(later) == 1);
    CHECK(later[1].status() == at::TaskStatus::canceled);
    g.release_rest();
    sup.stop();
}

TEST_CASE("when_any: throws TimeoutError saying how many and how long when none finished in time" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2});
    sup.start();
    GatedTasks g(sup, 2);
    CHECK_THROWS_WITH_AS((void)at::when_any(g.tasks, 20ms), "none of 2 tasks finished within 20ms", at::TimeoutError);
    // Its watchers were taken back: the tasks end as usual, and can be waited for again.
    g.release(0);
    CHECK(at::when_any(g.tasks, 10s) == 0);
    g.release(1);
    CHECK(g.tasks[1].get() == 1);
    g.release_rest();
    sup.stop();
}

TEST_CASE("when_any: an empty list or an empty handle is an error that says what to do") {
    std::vector<at::Task<int>> none;
    CHECK_THROWS_WITH_AS((void)at::when_any(none), "when_any() needs at least one task; with none, none can finish first",
                         at::Error);
    std::vector<at::Task<int>> empty_handle(2);
    CHECK_THROWS_WITH_AS((void)at::when_any(empty_handle, 1s),
                         "when_any(): the task at index 0 is an empty handle (default-constructed); pass handles that "
                         "background_task() returned",
                         at::Error);
}

TEST_CASE("when_any: takes a std::span, a std::array and the same task twice" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 4});
    sup.start();
    GatedTasks g(sup, 2);
    std::array<at::Task<int>, 3> array{g.tasks[0], g.tasks[1], g.tasks[1]};
    const std::span<const at::Task<int>> span(g.tasks);
    g.release(1);
    CHECK(at::when_any(array) == 1);  // told in the order watched: the first of the two
    CHECK(at::when_any(span, 10s) == 1);
    CHECK(at::when_any(std::span<at::Task<int>>(g.tasks)) == 1);
    g.release_rest();
    sup.stop();
}

TEST_CASE("when_any: thousands of waits on tasks ending while their watchers are taken back" *
          doctest::timeout(120)) {
    // Each round's tasks end on pool threads as when_any returns and takes
    // its watchers back: a watcher being told while it is taken back must
    // find its state alive (ASan, TSan).
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 4});
    sup.start();
    for (int round = 0; round < 3000; ++round) {
        std::vector<at::Task<int>> tasks;
        for (int i = 0; i < 4; ++i) tasks.push_back(at::background_task([i] { return i; }, {.supervisor = &sup})());
        const std::size_t first = at::when_any(tasks, 20s);
        REQUIRE(first < tasks.size());
        CHECK(tasks[first].ready());
    }
    CHECK(sup.wait_idle(20s));
    sup.stop();
}
