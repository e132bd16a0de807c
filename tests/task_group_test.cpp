// TaskGroup: tasks that succeed or fail together. The first failure cancels
// the rest (queued: canceled; running thread task: stop requested; running
// process task: killed), and wait() throws TaskGroupError listing every
// failure.
//
// Own main: at::init() must fork the zygote before anything starts a thread.

#include <doctest/doctest.h>

#include <atomic>
#include <latch>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include <atasker/atasker.hpp>

#include "pipe_signal.hpp"
#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::Gate;
using test_support::LogCapture;
using test_support::PipeSignal;

namespace {

PipeSignal started;  // worker -> test: the process task runs
PipeSignal release;  // test -> worker: never written; the task waits until killed

const at::MpTask blocks_until_killed{"group.blocks_until_killed", [](int) {
                                         started.send();
                                         return release.receive();
                                     }};
const at::MpTask plus_one{"group.plus_one", [](int x) { return x + 1; }};

/// Runs until asked to stop, then ends canceled.
void until_stopped(const std::stop_token& token) {
    test_support::wait_for_stop(token);
    throw at::CanceledError("stopped");
}

}  // namespace

TEST_CASE("task_group: wait returns once every task completed, and the group takes more after" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::TaskGroup group({.supervisor = &sup});
    auto a = group.background_task([](int x) { return x * 2; })(21);
    auto b = group.background_task([] { return std::string("b"); })();
    group.wait();
    CHECK(a.ready());
    CHECK(b.ready());
    CHECK(a.get() == 42);
    CHECK(b.get() == "b");
    CHECK(group.unfinished() == 0);
    CHECK_FALSE(group.closing());
    auto c = group.background_task([] { return 3; })();
    group.wait();
    CHECK(c.get() == 3);
    sup.stop();
}

TEST_CASE("task_group: one failure among 100 tasks cancels the rest; only a task ignoring its stop token completes" *
          doctest::timeout(60)) {
    LogCapture log(at::LogLevel::debug);
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 5, .max_size = 5});
    sup.start();
    Gate fail_now;
    Gate stubborn_may_finish;
    std::latch running{3};
    std::latch stopped{4};
    std::atomic<int> blockers_started{0};
    std::atomic<int> blockers_stopped{0};
    std::atomic<int> completed{0};
    at::TaskGroup group({.supervisor = &sup});
    auto failing = group.background_task([&]() -> int {
        fail_now.wait();
        throw std::runtime_error("early");
    }, {.name = "fails"})();
    auto stubborn = group.background_task([&] {  // takes no stop token
        stubborn_may_finish.wait();
        ++completed;
        return 1;
    })();
    std::vector<at::Task<int>> blockers;
    for (int i = 0; i < 98; ++i)
        blockers.push_back(group.background_task([&](std::stop_token token) -> int {
            ++blockers_started;
            running.count_down();
            try {
                until_stopped(token);
            } catch (...) {
                ++blockers_stopped;
                stopped.count_down();
                throw;
            }
            ++completed;
            return 0;
        })());
    running.wait();  // 5 threads: the failing, the stubborn and 3 blockers run; 95 are queued
    fail_now.open();
    stopped.wait();
    stubborn_may_finish.open();
    try {
        group.wait();
        FAIL("wait() did not throw");
    } catch (const at::TaskGroupError& e) {
        REQUIRE(e.failures().size() == 1);
        CHECK(e.failures()[0].id == failing.id());
        CHECK(e.failures()[0].name == "fails");
        CHECK_THROWS_WITH_AS(std::rethrow_exception(e.failures()[0].error), "early", std::runtime_error);
        CHECK(std::string(e.what()) == fmt::format("1 of the group's tasks failed: task {} 'fails': early", failing.id()));
    }
    // The 3 that ran, and the one the failing task's thread took next, as it
    // ended (before the failure was seen): it started with its stop already
    // requested. The queued ones were canceled before the running ones were
    // stopped, so the threads that freed found nothing to start.
    CHECK(blockers_started == 4);
    CHECK(blockers_stopped == 4);
    CHECK(completed == 1);         // the stubborn task alone
    CHECK(stubborn.get() == 1);
    for (const auto& b : blockers) CHECK(b.status() == at::TaskStatus::canceled);
    CHECK(failing.status() == at::TaskStatus::failed);
    CHECK(group.closing());
    // The group received the failure: logged at debug level, not as an error.
    CHECK(sup.wait_idle(20s));
    CHECK(log.at(at::LogLevel::debug, "task ") ==
          std::vector<std::string>{fmt::format("task {} 'fails' (thread) failed: early", failing.id())});
    CHECK(log.at(at::LogLevel::error).empty());
    sup.stop();
}

TEST_CASE("task_group: TaskGroupError lists every failure, first to fail first, and no canceled task" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2, .max_size = 2});
    sup.start();
    Gate fail_now;
    std::latch second_running{1};
    at::TaskGroup group({.supervisor = &sup});
    auto first = group.background_task([&]() -> int {
        fail_now.wait();
        throw std::runtime_error("boom");
    }, {.name = "first"})();
    // Asked to stop, it fails instead of ending canceled: a failure too.
    auto second = group.background_task([&](std::stop_token token) -> int {
        second_running.count_down();
        test_support::wait_for_stop(token);
        throw std::logic_error("gave up badly");
    }, {.name = "second"})();
    // Queued behind them; the failing task's thread may take it as it ends,
    // before the failure is seen: then it is asked to stop.
    auto queued = group.background_task([](std::stop_token token) -> int {
        until_stopped(token);
        return 0;
    }, {.name = "queued"})();
    second_running.wait();
    fail_now.open();
    try {
        group.wait();
        FAIL("wait() did not throw");
    } catch (const at::TaskGroupError& e) {
        REQUIRE(e.failures().size() == 2);
        CHECK(e.failures()[0].id == first.id());
        CHECK(e.failures()[1].id == second.id());
        CHECK_THROWS_AS(std::rethrow_exception(e.failures()[1].error), std::logic_error);
        CHECK(std::string(e.what()) == fmt::format("2 of the group's tasks failed: task {} 'first': boom; task {} "
                                                   "'second': gave up badly",
                                                   first.id(), second.id()));
    }
    CHECK(queued.status() == at::TaskStatus::canceled);
    group.wait();  // delivered once
    sup.stop();
}

TEST_CASE("task_group: putting into a closing group throws and says why" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::TaskGroup group({.supervisor = &sup});
    auto bad = group.background_task([]() -> int { throw std::runtime_error("no"); })();
    CHECK_THROWS_AS(group.wait(), at::TaskGroupError);
    CHECK(group.closing());
    CHECK_THROWS_WITH_AS((void)group.background_task([] { return 1; })(),
                         "the task group is closing: one of its tasks failed and the group canceled the others; "
                         "wait() for it, and put new tasks through a new group",
                         at::Error);
    CHECK(group.unfinished() == 0);
    sup.stop();
}

TEST_CASE("task_group: the destructor waits, never throws, and logs at error level a failure no wait() received" *
          doctest::timeout(30)) {
    LogCapture log(at::LogLevel::debug);
    at::TaskSupervisor sup;
    sup.start();
    Gate fail_now;
    at::Task<int> kept;
    {
        at::TaskGroup group({.name = "unwatched", .supervisor = &sup});
        kept = group.background_task([&]() -> int {
            fail_now.wait();
            throw std::runtime_error("nobody looked");
        })();
        fail_now.open();
    }
    CHECK(kept.ready());
    CHECK(sup.wait_idle(20s));
    CHECK(log.at(at::LogLevel::error) ==
          std::vector<std::string>{fmt::format(
              "task group: task {} 'unwatched' failed and no wait() received it: nobody looked", kept.id())});
    CHECK(log.at(at::LogLevel::debug, "task ") ==
          std::vector<std::string>{fmt::format("task {} 'unwatched' (thread) failed: nobody looked", kept.id())});
    sup.stop();
}

TEST_CASE("task_group: a group left by an exception cancels its tasks" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::Task<void> outlived;
    std::latch running{1};
    try {
        at::TaskGroup group({.supervisor = &sup});
        outlived = group.background_task([&](std::stop_token token) {
            running.count_down();
            until_stopped(token);
        })();
        running.wait();
        throw std::runtime_error("leaving the scope");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "leaving the scope");
    }
    CHECK(outlived.ready());
    CHECK(outlived.status() == at::TaskStatus::canceled);
    sup.stop();
}

TEST_CASE("task_group: the group's options are its tasks' defaults" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::TaskGroup group({.name = "crawl", .priority = at::Priority::high, .supervisor = &sup});
    auto plain = group.background_task([] {})();
    auto named = group.background_task([] {}, {.name = "own"})();
    auto normal = group.background_task([] {}, at::Priority::normal)();
    auto low = group.background_task([] {}, {.priority = at::Priority::low})();
    group.wait();
    CHECK(plain.info()->name == "crawl");
    CHECK(plain.info()->priority == at::Priority::high);
    CHECK(named.info()->name == "own");
    CHECK(named.info()->priority == at::Priority::high);
    CHECK(normal.info()->name == "crawl");
    CHECK(normal.info()->priority == at::Priority::normal);
    CHECK(low.info()->name == "crawl");
    CHECK(low.info()->priority == at::Priority::low);
    sup.stop();
}

TEST_CASE("task_group: the group's retries are its tasks' defaults; a failed run that is retried is no failure" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::TaskGroup group({.supervisor = &sup, .retries = 2});
    std::atomic<int> runs{0};
    auto flaky = group.background_task([&runs] {
        if (runs.fetch_add(1) == 0) throw std::runtime_error("first run fails");
        return 7;
    })();
    auto once = group.background_task([] { return 1; }, {.retries = 0})();
    group.wait();  // no TaskGroupError: the only failure ran again and completed
    CHECK(flaky.get() == 7);
    CHECK(runs.load() == 2);
    CHECK(flaky.info()->attempts == 2);
    CHECK(once.info()->attempts == 1);
    sup.stop();
}

TEST_CASE("task_group: the group's pool type is its tasks' default" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::TaskGroup threads({.supervisor = &sup, .type = at::TaskType::thread});
    CHECK(threads.background_task([] { return 2; })().get() == 2);
    // An MpTask cannot run on a thread: the group's type reached it.
    CHECK_THROWS_WITH_AS((void)threads.background_task(plus_one)(1),
                         doctest::Contains("an at::MpTask runs in a worker process, not on a thread"), at::Error);
    threads.wait();
    sup.stop();
}

TEST_CASE("task_group: a process task blocked in its worker is killed when a thread task of the group fails" *
          doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.set_mp_pool({.pool_size = 1});
    sup.start();
    at::TaskGroup group({.supervisor = &sup});
    auto process = group.background_task(blocks_until_killed)(1);
    CHECK(started.receive() == 'x');
    CHECK(process.status() == at::TaskStatus::started);
    auto thread = group.background_task([]() -> int { throw std::runtime_error("thread task failed"); })();
    try {
        group.wait();
        FAIL("wait() did not throw");
    } catch (const at::TaskGroupError& e) {
        REQUIRE(e.failures().size() == 1);
        CHECK(e.failures()[0].id == thread.id());
    }
    CHECK(process.status() == at::TaskStatus::canceled);
    CHECK_THROWS_AS((void)process.get(), at::CanceledError);
    CHECK(process.info()->name == "group.blocks_until_killed");
    // The pool serves on, with a fresh worker.
    CHECK(at::background_task(plus_one, {.supervisor = &sup})(1).get() == 2);
    sup.stop();
}

int main(int argc, char** argv) {
    started.open();
    release.open();
    at::init({.max_workers = 4, .slot_size = 64 * 1024});
    doctest::Context context(argc, argv);
    const int rc = context.run();
    at::shutdown();
    return rc;
}
