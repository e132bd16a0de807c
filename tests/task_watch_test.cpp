// TaskWatcher: what composition waits with. A watcher registered on a task
// that has not ended is told once when it ends; one on an ended task is
// refused; one taken back in time is never told.
#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <atomic>
#include <latch>
#include <vector>

#include "test_support.hpp"

namespace at = atasker;
using test_support::Gate;

namespace {

struct CountingWatcher final : at::detail::TaskWatcher {
    std::atomic<int> calls{0};
    std::atomic<bool> saw_done{false};
    const at::detail::TaskBase* task = nullptr;
    std::latch* ended = nullptr;
    void task_ended() noexcept override {
        saw_done = task->is_done();
        ++calls;
        if (ended != nullptr) ended->count_down();
    }
};

}  // namespace

TEST_CASE("task watch: a watcher is told once, after the outcome is visible" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    auto t = at::background_task([&] { gate.wait(); return 7; }, {.supervisor = &sup})();
    auto& base = at::detail::base_of(t);
    std::latch ended(2);
    CountingWatcher a, b;
    a.task = b.task = &base;
    a.ended = b.ended = &ended;
    REQUIRE(base.watch(a));
    REQUIRE(base.watch(b));
    CHECK(a.calls == 0);
    gate.open();
    ended.wait();
    CHECK(a.calls == 1);
    CHECK(b.calls == 1);
    CHECK(a.saw_done);
    CHECK(t.get() == 7);
    CHECK_FALSE(base.unwatch(a));  // already told

    CountingWatcher late;
    CHECK_FALSE(base.watch(late));  // ended: refused, never called
    CHECK(late.calls == 0);
    sup.stop();
}

TEST_CASE("task watch: a watcher taken back before the end is never told" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    auto t = at::background_task([&] { gate.wait(); }, {.supervisor = &sup})();
    auto& base = at::detail::base_of(t);
    CountingWatcher kept, taken;
    std::latch ended(1);
    kept.task = taken.task = &base;
    kept.ended = &ended;
    REQUIRE(base.watch(taken));
    REQUIRE(base.watch(kept));
    CHECK(base.unwatch(taken));
    gate.open();
    ended.wait();
    t.get();
    CHECK(taken.calls == 0);
    CHECK(kept.calls == 1);
    sup.stop();
}

TEST_CASE("task watch: thousands of tasks, each watched, each told once" * doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.start();
    constexpr int n = 5000;
    Gate gate;
    std::vector<at::Task<int>> tasks;
    tasks.reserve(n);
    auto fn = at::background_task([&](int i) { gate.wait(); return i; }, {.supervisor = &sup});
    for (int i = 0; i < n; ++i) tasks.push_back(fn(i));
    std::vector<CountingWatcher> watchers(n);
    std::latch ended(n);
    int refused = 0;
    for (int i = 0; i < n; ++i) {
        watchers[i].task = &at::detail::base_of(tasks[i]);
        watchers[i].ended = &ended;
        if (!watchers[i].task->watch(watchers[i])) {
            ++refused;
            ended.count_down();
        }
    }
    CHECK(refused == 0);  // none can end before the gate opens
    gate.open();
    ended.wait();
    for (int i = 0; i < n; ++i) {
        CHECK(watchers[i].calls == 1);
        CHECK(tasks[i].get() == i);
    }
    sup.stop();
}
