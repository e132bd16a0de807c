// as_completed(): a range over tasks in the order they finish, each once,
// waited for through TaskWatchers (no polling).
#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <algorithm>
#include <array>
#include <numeric>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::Gate;

namespace {

/// n tasks that each return their index once their own gate opens.
std::vector<at::Task<int>> gated(at::TaskSupervisor& sup, std::vector<Gate>& gates) {
    std::vector<at::Task<int>> tasks;
    for (std::size_t i = 0; i < gates.size(); ++i) {
        Gate& gate = gates[i];
        tasks.push_back(at::background_task([&gate, i] { gate.wait(); return static_cast<int>(i); },
                                            {.supervisor = &sup})());
    }
    return tasks;
}

}  // namespace

TEST_CASE("as_completed: yields every task once, in the order they finish" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 5});
    sup.start();
    std::vector<Gate> gates(5);
    auto tasks = gated(sup, gates);
    const std::vector<int> order = {3, 0, 4, 1, 2};
    gates[3].open();
    std::vector<int> seen;
    for (at::Task<int>& t : at::as_completed(tasks)) {
        CHECK(t.ready());
        seen.push_back(t.get());
        // One gate open at a time: the next task to finish is the one opened here.
        if (seen.size() < order.size()) gates[static_cast<std::size_t>(order[seen.size()])].open();
    }
    CHECK(seen == order);
    sup.stop();
}

TEST_CASE("as_completed: tasks finished before the loop come first, in list order" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::vector<Gate> gates(1);
    auto tasks = gated(sup, gates);
    tasks.push_back(at::background_task([] { return 10; }, {.supervisor = &sup})());
    tasks.push_back(at::background_task([] { return 20; }, {.supervisor = &sup})());
    tasks[1].wait();
    tasks[2].wait();
    auto range = at::as_completed(tasks);
    CHECK(range.size() == 3);
    std::vector<int> seen;
    for (auto& t : range) {
        seen.push_back(t.get());
        if (seen.size() == 2) gates[0].open();
    }
    CHECK(seen == std::vector<int>{10, 20, 0});
    sup.stop();
}

TEST_CASE("as_completed: a loop left early takes its watchers back and the tasks run on" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 3});
    sup.start();
    std::vector<Gate> gates(3);
    auto tasks = gated(sup, gates);
    gates[2].open();
    for (auto& t : at::as_completed(tasks)) {
        CHECK(t.get() == 2);
        break;
    }
    gates[0].open();
    gates[1].open();
    CHECK(at::wait_completed(tasks, 10s) == std::vector<int>{0, 1, 2});
    sup.stop();
}

TEST_CASE("as_completed: with a timeout, ++ throws TimeoutError saying how many did not finish" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 3});
    sup.start();
    std::vector<Gate> gates(2);
    auto tasks = gated(sup, gates);
    tasks.insert(tasks.begin(), at::background_task([] { return 5; }, {.supervisor = &sup})());
    tasks.front().wait();
    auto range = at::as_completed(tasks, 30ms);
    auto it = range.begin();
    REQUIRE(it != range.end());
    CHECK(it->get() == 5);
    CHECK_THROWS_WITH_AS(++it, "2 of 3 tasks did not finish within 30ms", at::TimeoutError);
    gates[0].open();
    gates[1].open();
    CHECK(at::wait_completed(tasks, 10s) == std::vector<int>{5, 0, 1});
    sup.stop();
}

TEST_CASE("as_completed: a temporary list is kept by the range; a const list yields const handles" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    const auto make = [&] {
        std::vector<at::Task<int>> tasks;
        for (int i = 1; i <= 4; ++i) tasks.push_back(at::background_task([i] { return i; }, {.supervisor = &sup})());
        return tasks;
    };
    int sum = 0;
    for (at::Task<int>& t : at::as_completed(make())) sum += t.get();
    CHECK(sum == 10);

    const auto kept = make();
    static_assert(std::is_same_v<decltype(*at::as_completed(kept).begin()), const at::Task<int>&>);
    std::set<int> seen;
    for (const at::Task<int>& t : at::as_completed(kept, 10s)) seen.insert(t.get());
    CHECK(seen == std::set<int>{1, 2, 3, 4});

    std::array<at::Task<int>, 2> pair{kept[0], kept[1]};
    int from_span = 0;
    for (auto& t : at::as_completed(std::span<at::Task<int>>(pair))) from_span += t.get();
    CHECK(from_span == 3);
    sup.stop();
}

TEST_CASE("as_completed: an empty list yields nothing; an empty handle is an error that says what to do") {
    std::vector<at::Task<void>> none;
    int n = 0;
    for ([[maybe_unused]] auto& t : at::as_completed(none)) ++n;
    CHECK(n == 0);
    std::vector<at::Task<void>> empty_handle(1);
    CHECK_THROWS_WITH_AS((void)at::as_completed(empty_handle),
                         "as_completed(): the task at index 0 is an empty handle (default-constructed); pass handles "
                         "that background_task() returned",
                         at::Error);
}

TEST_CASE("as_completed: 20k tasks, each yielded once" * doctest::timeout(120)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2});
    sup.start();
    constexpr int n = 20000;
    std::vector<at::Task<int>> tasks;
    tasks.reserve(n);
    auto identity = at::background_task([](int i) { return i; }, {.supervisor = &sup});
    for (int i = 0; i < n; ++i) tasks.push_back(identity(i));
    std::vector<char> seen(n, 0);
    int count = 0;
    for (auto& t : at::as_completed(tasks, 60s)) {
        ++seen[static_cast<std::size_t>(t.get())];
        ++count;
    }
    CHECK(count == n);
    CHECK(std::all_of(seen.begin(), seen.end(), [](char c) { return c == 1; }));
    sup.stop();
}
