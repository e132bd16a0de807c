#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <latch>
#include <limits>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace at = atasker;
using test_support::Gate;
using test_support::occupy;
using test_support::Trace;

namespace {

auto recorder(Trace& trace, std::string label) {
    return [&trace, label] { trace.add(label); };
}

}  // namespace

TEST_CASE("admission: a mixed queue behind a full pool starts by priority, FIFO within one" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    Gate gate;
    Trace trace;
    auto blocker = occupy(sup, gate);
    std::vector<at::Task<void>> tasks;
    const std::vector<std::pair<std::string, at::Priority>> puts = {
        {"low1", at::Priority::low},     {"normal1", at::Priority::normal}, {"high1", at::Priority::high},
        {"low2", at::Priority::low},     {"high2", at::Priority::high},     {"normal2", at::Priority::normal},
        {"high3", at::Priority::high},   {"low3", at::Priority::low},
    };
    for (const auto& [label, p] : puts)
        tasks.push_back(at::background_task(recorder(trace, label), {.priority = p, .supervisor = &sup})());
    const auto info = sup.get_info();
    CHECK(info.thread_pool.queued == std::array<std::size_t, 4>{0, 3, 2, 3});
    CHECK(info.thread_pool.running == std::array<std::size_t, 4>{0, 0, 0, 1});
    gate.open();
    at::wait_completed(tasks, std::chrono::seconds(20));
    CHECK(trace.labels() ==
          std::vector<std::string>{"high1", "high2", "high3", "normal1", "normal2", "low1", "low2", "low3"});
    sup.stop();
}

TEST_CASE("admission: reserves let normal and high in while low waits" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1, .reserve_normal = 1, .reserve_high = 1});
    sup.start();
    Gate gate;
    auto low0 = occupy(sup, gate, at::Priority::low);
    auto low1 = at::background_task([&gate] { gate.wait(); }, {.priority = at::Priority::low, .supervisor = &sup})();
    // The low limit (pool_size 1) is reached: low1 waits, but normal has a reserve.
    auto normal1 = occupy(sup, gate, at::Priority::normal);
    auto normal2 = at::background_task([] {}, {.priority = at::Priority::normal, .supervisor = &sup})();
    // Normal's limit (2) is reached too; high still has its reserve.
    auto high1 = occupy(sup, gate, at::Priority::high);
    auto high2 = at::background_task([] {}, {.priority = at::Priority::high, .supervisor = &sup})();

    CHECK(low1.status() == at::TaskStatus::queued);
    CHECK(normal2.status() == at::TaskStatus::queued);
    CHECK(high2.status() == at::TaskStatus::queued);
    const auto info = sup.get_info();
    CHECK(info.thread_pool.running == std::array<std::size_t, 4>{0, 1, 1, 1});
    CHECK(info.thread_pool.queued == std::array<std::size_t, 4>{0, 1, 1, 1});
    gate.open();
    for (auto* t : {&low0, &low1, &normal1, &normal2, &high1, &high2}) t->get();
    sup.stop();
}

TEST_CASE("admission: a low task waits while a more urgent one waits, even with room for low" *
          doctest::timeout(30)) {
    // Both slots are full; a low and then a high wait. When one slot frees,
    // the high goes first although the low was put earlier.
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2});
    sup.start();
    Gate first;
    Gate second;
    Trace trace;
    auto a = occupy(sup, first);
    auto b = occupy(sup, second);
    auto low = at::background_task(recorder(trace, "low"), {.priority = at::Priority::low, .supervisor = &sup})();
    auto high = at::background_task(recorder(trace, "high"), {.priority = at::Priority::high, .supervisor = &sup})();
    first.open();
    a.get();
    high.get();
    low.get();
    CHECK(trace.labels() == std::vector<std::string>{"high", "low"});
    second.open();
    sup.stop();
}

TEST_CASE("admission: a critical task starts at once while everything is blocked" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1, .reserve_normal = 1, .reserve_high = 1});
    sup.start();
    Gate gate;
    std::vector<at::Task<void>> blockers;
    for (auto p : {at::Priority::low, at::Priority::normal, at::Priority::high}) blockers.push_back(occupy(sup, gate, p));
    auto queued_high = at::background_task([] {}, {.priority = at::Priority::high, .supervisor = &sup})();
    // It completes while every other slot is still blocked, on a thread the
    // pool grew past its capacity of 3 for it.
    auto c = at::background_task([&sup] { return sup.get_info().thread_pool; },
                                 {.priority = at::Priority::critical, .supervisor = &sup})();
    const auto seen = c.get();
    CHECK(seen.workers == 4);
    CHECK(seen.running == std::array<std::size_t, 4>{1, 1, 1, 1});
    CHECK(queued_high.status() == at::TaskStatus::queued);
    gate.open();
    queued_high.get();
    sup.stop();
}

TEST_CASE("admission: resizing a saturated pool starts the waiting tasks" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    Gate gate;
    auto blocker = occupy(sup, gate);
    std::latch ran{3};
    std::vector<at::Task<void>> tasks;
    for (int i = 0; i < 3; ++i) tasks.push_back(at::background_task([&ran] { ran.count_down(); }, {.supervisor = &sup})());
    CHECK(sup.get_info().thread_pool.queued[2] == 3);
    sup.set_thread_pool({.pool_size = 4});
    ran.wait();  // they ran while the blocker still holds its slot
    CHECK(blocker.status() == at::TaskStatus::started);
    gate.open();
    blocker.get();
    sup.stop();
}

TEST_CASE("admission: pool_size 0 is unlimited" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 0});
    sup.start();
    Gate gate;
    std::latch all_started{6};
    std::vector<at::Task<void>> tasks;
    for (int i = 0; i < 6; ++i)
        tasks.push_back(at::background_task(
            [&] {
                all_started.count_down();
                gate.wait();
            },
            {.priority = at::Priority::low, .supervisor = &sup})());
    all_started.wait();
    CHECK(sup.get_info().thread_pool.running[3] == 6);
    gate.open();
    at::wait_completed(tasks, std::chrono::seconds(20));
    sup.stop();
}

TEST_CASE("admission: a bad pool configuration is refused with the value that is wrong") {
    at::TaskSupervisor sup;
    CHECK_THROWS_WITH_AS(sup.set_thread_pool({.pool_size = 2, .min_size = 5}),
                         "thread pool: min_size (5) is larger than max_size (2); lower min_size or raise max_size",
                         at::Error);
    CHECK_THROWS_WITH_AS(sup.set_thread_pool({.pool_size = 4, .max_size = 2}),
                         "thread pool: max_size (2) is smaller than pool_size (4); raise max_size or lower pool_size",
                         at::Error);
    CHECK_THROWS_AS(sup.set_thread_pool({.pool_size = 0, .reserve_high = 2}), at::Error);
}

TEST_CASE("admission: limits whose sum passes SIZE_MAX are unlimited, not wrapped" * doctest::timeout(30)) {
    constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
    const at::PoolOptions sums_past_max[] = {
        {.pool_size = max, .reserve_normal = 1},
        {.pool_size = max / 2 + 1, .reserve_normal = max / 2 + 1, .reserve_high = 2},
        {.pool_size = 1, .reserve_normal = max, .reserve_high = max},
    };
    for (const at::PoolOptions& options : sums_past_max) {
        CAPTURE(options.pool_size);
        REQUIRE(options.capacity() == max);  // a wrapped sum would leave the tasks below waiting
        at::TaskSupervisor sup;
        sup.set_thread_pool(options);
        sup.start();
        Gate gate;
        constexpr int n = 4;
        std::latch all_started{n};
        std::vector<at::Task<void>> tasks;
        for (int i = 0; i < n; ++i)
            tasks.push_back(at::background_task(
                [&] {
                    all_started.count_down();
                    gate.wait();
                },
                {.priority = i % 2 == 0 ? at::Priority::normal : at::Priority::high, .supervisor = &sup})());
        all_started.wait();  // every one started: no limit wrapped to a small number
        CHECK(sup.get_info().thread_pool.options.capacity() == max);
        gate.open();
        at::wait_completed(tasks, std::chrono::seconds(20));
        sup.stop();
    }
}
