#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::Gate;
using test_support::LogCapture;

TEST_CASE("background_task: any callable with any arguments returns its result through get" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    auto add = at::background_task([](int a, const std::string& b) { return b + std::to_string(a); },
                                   {.supervisor = &sup});
    CHECK(add(4, std::string("x")).get() == "x4");
    auto unique = at::background_task([](std::unique_ptr<int> p) { return *p + 1; }, {.supervisor = &sup});
    CHECK(unique(std::make_unique<int>(41)).get() == 42);
    CHECK(at::wait_completed(add(1, std::string("y"))) == "y1");
    sup.stop();
}

TEST_CASE("background_task: the default supervisor and atasker's priority argument" * doctest::timeout(30)) {
    at::task_supervisor.start();
    auto t = at::background_task([](int x) { return x * 2; }, at::TASK_HIGH)(21);
    CHECK(t.get() == 42);
    CHECK(t.info()->priority == at::Priority::high);
    at::task_supervisor.stop();
}

TEST_CASE("background_task: an exception reaches get, the callback, the record and the log" *
          doctest::timeout(30)) {
    LogCapture log(at::LogLevel::debug);
    at::TaskSupervisor sup;
    sup.start();
    std::promise<std::string> from_callback;
    auto t = at::background_task([]() -> int { throw std::invalid_argument("bad input 7"); },
                                 {.name = "parse", .supervisor = &sup})
                 .callback([&](const at::Task<int>& done) {
                     try {
                         (void)done.get();
                         from_callback.set_value("no error");
                     } catch (const std::invalid_argument& e) {
                         from_callback.set_value(e.what());
                     }
                 })();
    CHECK_THROWS_WITH_AS(t.get(), "bad input 7", std::invalid_argument);
    CHECK(from_callback.get_future().get() == "bad input 7");
    const auto info = t.info();
    REQUIRE(info);
    CHECK(info->status == at::TaskStatus::failed);
    CHECK(info->error == "bad input 7");
    CHECK(t.status() == at::TaskStatus::failed);
    sup.stop();
    // Received (by the callback and get): a debug line, no error line.
    CHECK(log.at(at::LogLevel::debug, "task ") ==
          std::vector<std::string>{fmt::format("task {} 'parse' (thread) failed: bad input 7", t.id())});
    CHECK(log.at(at::LogLevel::error).empty());
}

TEST_CASE("background_task: the callback runs once with the result, and dropping the handle never cancels" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::promise<int> result;
    std::atomic<int> calls{0};
    {
        auto ignored = at::background_task([] { return 5; }, {.supervisor = &sup})
                           .callback([&](const at::Task<int>& t) {
                               ++calls;
                               result.set_value(t.get());
                           })();
    }  // handle dropped at once: fire and forget
    CHECK(result.get_future().get() == 5);
    sup.stop();
    CHECK(calls == 1);
}

TEST_CASE("background_task: a move-only callback moves into the task when the wrapper is called as an rvalue" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    // The callback owns a promise: it cannot be copied, only moved.
    std::promise<int> result;
    std::future<int> future = result.get_future();
    auto wrapped = at::background_task([](int x) { return x + 1; }, {.supervisor = &sup})
                       .callback([p = std::move(result)](const at::Task<int>& t) mutable { p.set_value(t.get()); });
    static_assert(!std::is_copy_constructible_v<decltype(wrapped)>);
    auto task = std::move(wrapped)(41);
    CHECK(task.get() == 42);
    CHECK(future.get() == 42);
    sup.stop();
}

TEST_CASE("background_task: a record goes queued, started, completed with consistent times" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    Gate gate;
    std::latch started{1};
    auto first = at::background_task(
        [&] {
            started.count_down();
            gate.wait();
        },
        {.supervisor = &sup})();
    started.wait();
    auto second = at::background_task([] { return 1; }, {.name = "second", .supervisor = &sup})();
    auto queued = second.info();
    REQUIRE(queued);
    CHECK(queued->status == at::TaskStatus::queued);
    CHECK(queued->name == "second");
    CHECK(queued->type == at::TaskType::thread);
    CHECK_FALSE(queued->time_started);
    CHECK(first.info()->status == at::TaskStatus::started);
    CHECK(first.info()->time_started.has_value());
    gate.open();
    second.get();
    const auto done = second.info();
    REQUIRE(done);
    CHECK(done->status == at::TaskStatus::completed);
    REQUIRE(done->time_started);
    REQUIRE(done->time_completed);
    CHECK(done->time_queued <= *done->time_started);
    CHECK(*done->time_started <= *done->time_completed);
    CHECK(done->progress == 1.0);
    CHECK(fmt::format("{}", *done) == fmt::format("task {} 'second' (thread, normal): completed, progress 100%", second.id()));
    sup.stop();
}

TEST_CASE("background_task: progress reported by the task shows in its record" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    std::latch reported{1};
    auto t = at::background_task(
        [&](at::Progress& progress) {
            progress.report(0.25);
            reported.count_down();
            gate.wait();
            progress.report(1.5);  // out of range: the task fails
        },
        {.supervisor = &sup})();
    reported.wait();
    CHECK(t.info()->progress == doctest::Approx(0.25));
    gate.open();
    CHECK_THROWS_WITH_AS(t.get(),
                         "progress must be between 0.0 and 1.0, got 1.5; report a fraction of the work done",
                         at::Error);
    sup.stop();
}

TEST_CASE("background_task: a delayed task holds no slot, then runs at its priority" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    const auto put_at = std::chrono::system_clock::now();
    auto delayed = at::background_task([] { return 3; }, {.delay = 30ms, .supervisor = &sup})();
    auto later = at::background_task([] { return 4; }, {.delay = 1h, .supervisor = &sup})();
    CHECK(delayed.status() == at::TaskStatus::delayed);
    CHECK(sup.get_info().delayed == 2);
    // The single slot is free although two tasks are delayed.
    CHECK(at::background_task([] { return 5; }, {.supervisor = &sup})().get() == 5);
    CHECK(delayed.get() == 3);
    CHECK(*delayed.info()->time_started >= put_at + 30ms - test_support::record_clock_tolerance);
    CHECK(later.cancel());
    CHECK(later.status() == at::TaskStatus::canceled);
    CHECK_THROWS_AS(later.get(), at::CanceledError);
    CHECK(sup.get_info().delayed == 0);
    sup.stop();
}

TEST_CASE("background_task: a queued task canceled never runs and its handle throws" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    Gate gate;
    std::latch started{1};
    auto blocker = at::background_task(
        [&] {
            started.count_down();
            gate.wait();
        },
        {.supervisor = &sup})();
    started.wait();
    std::atomic<bool> ran{false};
    auto victim = at::background_task([&] { ran = true; }, {.supervisor = &sup})();
    auto after = at::background_task([] { return 1; }, {.supervisor = &sup})();
    CHECK(victim.cancel());
    CHECK_FALSE(victim.cancel());  // nothing left to cancel
    CHECK(victim.status() == at::TaskStatus::canceled);
    CHECK_THROWS_WITH_AS(victim.get(), fmt::format("task {} was canceled before it started", victim.id()).c_str(),
                         at::CanceledError);
    gate.open();
    CHECK(after.get() == 1);
    CHECK_FALSE(ran.load());
    CHECK(victim.info()->status == at::TaskStatus::canceled);
    sup.stop();
}

TEST_CASE("background_task: a running task that takes a stop token is asked to stop" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::latch started{1};
    auto t = at::background_task(
        [&](std::stop_token token) {
            started.count_down();
            test_support::wait_for_stop(token);
            if (token.stop_requested()) throw at::CanceledError("stopped on request");
            return 1;
        },
        {.supervisor = &sup})();
    started.wait();
    CHECK(t.cancel());
    CHECK_THROWS_WITH_AS(t.get(), "stopped on request", at::CanceledError);
    CHECK(t.status() == at::TaskStatus::canceled);
    CHECK(t.info()->status == at::TaskStatus::canceled);
    // A running task without a stop token cannot be canceled.
    Gate gate;
    std::latch started2{1};
    auto plain = at::background_task(
        [&] {
            started2.count_down();
            gate.wait();
        },
        {.supervisor = &sup})();
    started2.wait();
    CHECK_FALSE(plain.cancel());
    gate.open();
    plain.get();
    CHECK(plain.status() == at::TaskStatus::completed);
    sup.stop();
}

namespace {

class GaveUp : public at::CanceledError {
public:
    using at::CanceledError::CanceledError;
};

}  // namespace

TEST_CASE("background_task: a function throwing a CanceledError subclass ends canceled, one throwing "
          "std::runtime_error ends failed" *
          doctest::timeout(30)) {
    LogCapture log(at::LogLevel::debug);
    at::TaskSupervisor sup;
    sup.start();
    auto gave_up = at::background_task([]() -> int { throw GaveUp("gave up halfway"); }, {.supervisor = &sup})();
    // CanceledError is itself a std::runtime_error: the base must not pass for it.
    auto broke = at::background_task([]() -> int { throw std::runtime_error("disk full"); }, {.supervisor = &sup})();
    CHECK_THROWS_WITH_AS(gave_up.get(), "gave up halfway", GaveUp);
    CHECK_THROWS_WITH_AS(broke.get(), "disk full", std::runtime_error);
    CHECK(gave_up.status() == at::TaskStatus::canceled);
    CHECK(broke.status() == at::TaskStatus::failed);
    const auto gave_up_info = sup.get_task_info(gave_up.id());
    REQUIRE(gave_up_info);
    CHECK(gave_up_info->status == at::TaskStatus::canceled);
    CHECK(gave_up_info->error == "gave up halfway");
    const auto broke_info = sup.get_task_info(broke.id());
    REQUIRE(broke_info);
    CHECK(broke_info->status == at::TaskStatus::failed);
    CHECK(broke_info->error == "disk full");
    sup.stop();
    // Only a failure is logged as one (at debug level: get() received it).
    CHECK(log.at(at::LogLevel::debug, "task ") ==
          std::vector<std::string>{fmt::format("task {} '' (thread) failed: disk full", broke.id())});
    CHECK(log.at(at::LogLevel::error).empty());
}

TEST_CASE("background_task: a failure nobody can receive (no handle, no callback) is logged at error level" *
          doctest::timeout(30)) {
    LogCapture log(at::LogLevel::debug);
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    at::TaskId id = 0;
    {
        auto t = at::background_task([&]() -> int { gate.wait(); throw std::runtime_error("lost"); },
                                     {.name = "forgotten", .supervisor = &sup})();
        id = t.id();
    }  // the handle goes before the task fails
    gate.open();
    CHECK(sup.wait_idle(20s));  // idle: its failure is logged
    CHECK(log.at(at::LogLevel::error) ==
          std::vector<std::string>{fmt::format("task {} 'forgotten' (thread) failed: lost", id)});
    CHECK(log.at(at::LogLevel::debug, "task ").empty());
    sup.stop();
}

TEST_CASE("background_task: a failure kept in a handle is logged at error level when the last handle goes "
          "without receiving it" *
          doctest::timeout(30)) {
    LogCapture log(at::LogLevel::debug);
    at::TaskSupervisor sup;
    sup.start();
    auto t = at::background_task([]() -> int { throw std::runtime_error("unread"); }, {.supervisor = &sup})();
    auto copy = t;
    t.wait();  // waiting is not receiving
    CHECK(t.status() == at::TaskStatus::failed);
    CHECK(sup.wait_idle(20s));
    const auto line = fmt::format("task {} '' (thread) failed: unread", t.id());
    CHECK(log.at(at::LogLevel::debug, "task ") == std::vector<std::string>{line});
    CHECK(log.at(at::LogLevel::error).empty());
    t = {};
    CHECK(log.at(at::LogLevel::error).empty());  // a handle is left
    copy = {};
    CHECK(log.at(at::LogLevel::error) == std::vector<std::string>{line});
    sup.stop();
}

TEST_CASE("background_task: a failure read through error() or get() is logged at debug level only" *
          doctest::timeout(30)) {
    LogCapture log(at::LogLevel::debug);
    at::TaskSupervisor sup;
    sup.start();
    std::vector<std::string> lines;
    {
        auto read = at::background_task([]() -> int { throw std::runtime_error("read"); }, {.supervisor = &sup})();
        auto got = at::background_task([]() -> int { throw std::runtime_error("got"); }, {.supervisor = &sup})();
        auto ok = at::background_task([] { return 1; }, {.supervisor = &sup})();
        CHECK(sup.wait_idle(20s));
        CHECK(read.error() != nullptr);
        CHECK_THROWS_WITH_AS(got.get(), "got", std::runtime_error);
        CHECK(ok.error() == nullptr);
        lines = {fmt::format("task {} '' (thread) failed: read", read.id()),
                 fmt::format("task {} '' (thread) failed: got", got.id())};
    }  // every handle goes
    auto debug = log.at(at::LogLevel::debug, "task ");
    std::sort(debug.begin(), debug.end());
    std::sort(lines.begin(), lines.end());
    CHECK(debug == lines);
    CHECK(log.at(at::LogLevel::error).empty());
    sup.stop();
}

TEST_CASE("background_task: wait_completed on several tasks throws TimeoutError when one is late" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    std::vector<at::Task<int>> tasks;
    tasks.push_back(at::background_task([] { return 1; }, {.supervisor = &sup})());
    tasks.push_back(at::background_task([&] { gate.wait(); return 2; }, {.supervisor = &sup})());
    CHECK_THROWS_WITH_AS(at::wait_completed(tasks, 20ms), "1 of 2 tasks did not finish within 20ms",
                         at::TimeoutError);
    gate.open();
    CHECK(at::wait_completed(tasks, 20s) == std::vector<int>{1, 2});
    sup.stop();
}

TEST_CASE("background_task: wait_completed on several tasks names the first that failed, its exception nested "
          "with its own type" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::vector<at::Task<int>> tasks;
    tasks.push_back(at::background_task([] { return 1; }, {.supervisor = &sup})());
    tasks.push_back(
        at::background_task([]() -> int { throw std::invalid_argument("bad input 7"); }, {.name = "parse", .supervisor = &sup})());
    tasks.push_back(at::background_task([]() -> int { throw std::runtime_error("later in the list"); },
                                        {.supervisor = &sup})());
    try {
        (void)at::wait_completed(tasks, 20s);
        FAIL("wait_completed did not throw");
    } catch (const at::TaskFailedError& e) {
        CHECK(std::string(e.what()) == fmt::format("task {} 'parse' (thread) failed: bad input 7", tasks[1].id()));
        CHECK(e.task_id() == tasks[1].id());
        CHECK(e.task_name() == "parse");
        CHECK(e.index() == 1);
        CHECK_THROWS_WITH_AS(std::rethrow_if_nested(e), "bad input 7", std::invalid_argument);
        CHECK_THROWS_WITH_AS(e.rethrow_nested(), "bad input 7", std::invalid_argument);
    }
    // One task: its exception as it is.
    CHECK_THROWS_WITH_AS((void)at::wait_completed(tasks[1]), "bad input 7", std::invalid_argument);
    CHECK_THROWS_WITH_AS((void)at::wait_completed(tasks[2]), "later in the list", std::runtime_error);
    sup.stop();
}

TEST_CASE("background_task: wait_completed on several tasks names a canceled one" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::vector<at::Task<void>> tasks;
    tasks.push_back(at::background_task([] {}, {.name = "later", .delay = 1h, .supervisor = &sup})());
    CHECK(tasks[0].cancel());
    try {
        at::wait_completed(tasks, 20s);
        FAIL("wait_completed did not throw");
    } catch (const at::TaskFailedError& e) {
        const auto id = tasks[0].id();
        CHECK(std::string(e.what()) ==
              fmt::format("task {} 'later' (thread) was canceled: task {} was canceled before it started", id, id));
        CHECK_THROWS_AS(std::rethrow_if_nested(e), at::CanceledError);
    }
    sup.stop();
}

TEST_CASE("background_task: putting on a supervisor that is not started throws and says what to do") {
    at::TaskSupervisor sup;
    CHECK_THROWS_WITH_AS(at::background_task([] {}, {.supervisor = &sup})(),
                         "task supervisor is not started; call start() before putting tasks", at::Error);
    sup.start();
    sup.stop();
    CHECK_THROWS_WITH_AS(at::background_task([] {}, {.supervisor = &sup})(),
                         "task supervisor is stopped; call start() before putting tasks", at::Error);
    CHECK_THROWS_AS(at::background_task([] {}, {.priority = static_cast<at::Priority>(7), .supervisor = &sup})(),
                    at::Error);
}
