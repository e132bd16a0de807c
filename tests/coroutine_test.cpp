// co_await on a Task from a coroutine type of the user's own (a minimal eager
// one here): the result or the task's exception, resumed on the thread that
// ended the task, or where resume_on()'s scheduler says.
#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <condition_variable>
#include <coroutine>
#include <deque>
#include <exception>
#include <functional>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::current_thread;
using test_support::Eager;
using test_support::Gate;
using test_support::message_of;

namespace {

/// What one awaiting coroutine saw.
template <class T>
struct Outcome {
    T value{};
    std::exception_ptr error;
    std::thread::id before;  // the thread the coroutine awaited on
    std::thread::id after;   // the thread it went on on
};

template <class Awaitable, class T>
Eager await_into(Awaitable awaitable, Outcome<T>& out, std::latch& done) {
    out.before = current_thread();
    try {
        out.value = co_await std::move(awaitable);
    } catch (...) {
        out.error = std::current_exception();
    }
    out.after = current_thread();
    done.count_down();
}


/// A thread of the test's own that runs the jobs handed to it, in order.
class Runner {
public:
    Runner() : thread_([this] { run(); }) {}
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;
    ~Runner() {
        post({});
        thread_.join();
    }
    void post(std::function<void()> job) {
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(job));
        cv_.notify_one();
    }
    [[nodiscard]] std::thread::id id() const noexcept { return thread_.get_id(); }

private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [this] { return !jobs_.empty(); });
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            if (!job) return;
            job();
        }
    }

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::thread thread_;
};

}  // namespace

TEST_CASE("coroutine: co_await gives the task's result, resumed on the thread that ran the task" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    std::thread::id ran_on;
    auto task = at::background_task(
        [&] {
            gate.wait();
            ran_on = std::this_thread::get_id();
            return 42;
        },
        {.supervisor = &sup})();
    Outcome<int> out;
    std::latch done{1};
    await_into(task, out, done);  // suspends: returns here at once
    CHECK_FALSE(done.try_wait());
    gate.open();
    done.wait();
    CHECK(out.value == 42);
    CHECK_FALSE(out.error);
    CHECK(out.before == std::this_thread::get_id());
    CHECK(out.after == ran_on);
    sup.stop();
}

TEST_CASE("coroutine: co_await on a task that has ended goes on at once, on the awaiting thread" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    auto task = at::background_task([] { return std::string("ready"); }, {.supervisor = &sup})();
    task.wait();
    Outcome<std::string> out;
    std::latch done{1};
    await_into(task, out, done);
    CHECK(done.try_wait());  // ran to its end within the call
    CHECK(out.value == "ready");
    CHECK(out.after == std::this_thread::get_id());
    sup.stop();
}

TEST_CASE("coroutine: co_await rethrows a failed task's exception, suspended or not" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    auto fail = at::background_task(
        [&gate]() -> int {
            gate.wait();
            throw std::invalid_argument("bad input");
        },
        {.supervisor = &sup});
    auto waited = fail();
    Outcome<int> suspended, ended;
    std::latch done{2};
    await_into(waited, suspended, done);
    gate.open();
    waited.wait();
    await_into(waited, ended, done);
    done.wait();
    for (const auto* out : {&suspended, &ended}) {
        REQUIRE(out->error);
        CHECK_THROWS_WITH_AS(std::rethrow_exception(out->error), "bad input", std::invalid_argument);
        CHECK(out->value == 0);
    }
    sup.stop();
}

TEST_CASE("coroutine: a canceled task resumes its awaiter on the canceling thread with CanceledError" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    auto later = at::background_task([] { return 1; }, {.delay = 1h, .supervisor = &sup})();
    Outcome<int> out;
    std::latch done{1};
    await_into(later, out, done);
    CHECK_FALSE(done.try_wait());
    CHECK(later.cancel());
    CHECK(done.try_wait());  // resumed inline, within cancel()
    CHECK(out.after == std::this_thread::get_id());
    REQUIRE(out.error);
    CHECK_THROWS_AS(std::rethrow_exception(out.error), at::CanceledError);
    sup.stop();
}

TEST_CASE("coroutine: void tasks and handles awaited as temporaries" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::latch done{1};
    std::vector<std::string> seen;
    Gate gate;
    // Wrappers named outside the co_await expressions: g++ 12 moves
    // temporaries of a co_await expression into the coroutine frame
    // bytewise, which breaks TaskOptions' short name string (known-limits.md).
    auto wait_gate = at::background_task([&gate] { gate.wait(); }, {.supervisor = &sup});
    auto make = at::background_task([](const char* s) { return std::string(s); }, {.supervisor = &sup});
    // A named closure: the coroutine reads its captures after the call returned.
    auto body = [&]() -> Eager {
        co_await wait_gate();
        seen.emplace_back("void");
        std::string s = co_await make("copy");
        seen.push_back(std::move(s));
        const std::string& ref = co_await make("temporary");
        seen.push_back(ref);  // the temporary handle's result, a copy that outlives it
        done.count_down();
    };
    body();
    gate.open();
    done.wait();
    CHECK(seen == std::vector<std::string>{"void", "copy", "temporary"});
    sup.stop();
}

TEST_CASE("coroutine: one coroutine awaits 1000 tasks in a loop" * doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.start();
    std::latch done{1};
    long sum = 0;
    int awaited = 0;
    auto twice = at::background_task([](int i) { return 2 * i; }, {.supervisor = &sup});
    auto body = [&]() -> Eager {
        for (int i = 0; i < 1000; ++i) {
            sum += co_await twice(i);
            ++awaited;
        }
        done.count_down();
    };
    body();
    done.wait();
    CHECK(awaited == 1000);
    CHECK(sum == 999000);
    sup.stop();
}

TEST_CASE("coroutine: 1000 coroutines await gated tasks and all resume once the gate opens" *
          doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.start();
    constexpr int n = 1000;
    Gate gate;
    auto gated = at::background_task(
        [&gate](int i) {
            gate.wait();
            return i;
        },
        {.supervisor = &sup});
    std::vector<Outcome<int>> outs(n);
    std::latch done{n};
    for (int i = 0; i < n; ++i) await_into(gated(i), outs[static_cast<std::size_t>(i)], done);
    gate.open();
    done.wait();
    for (int i = 0; i < n; ++i) {
        CHECK(outs[static_cast<std::size_t>(i)].value == i);
        CHECK_FALSE(outs[static_cast<std::size_t>(i)].error);
    }
    sup.stop();
}

TEST_CASE("coroutine: co_await on an empty handle throws at::Error saying what to do") {
    at::Task<int> empty;
    Outcome<int> out;
    std::latch done{1};
    await_into(empty, out, done);
    REQUIRE(done.try_wait());
    REQUIRE(out.error);
    CHECK_THROWS_WITH_AS(std::rethrow_exception(out.error),
                         "co_await on an empty Task handle; assign it a task from background_task() first",
                         at::Error);
    CHECK_THROWS_WITH_AS((void)at::resume_on(empty, [](std::coroutine_handle<> h) { h.resume(); }),
                         "resume_on() got an empty Task handle; give it a task from background_task()", at::Error);
}

TEST_CASE("coroutine: resume_on goes on where the scheduler says, whether the task had ended or not" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Runner runner;
    // A scheduler taking std::function<void()>: a coroutine handle is callable.
    auto on_runner = [&runner](std::function<void()> job) { runner.post(std::move(job)); };
    Gate gate;
    auto gated = at::background_task(
        [&gate] {
            gate.wait();
            return 5;
        },
        {.supervisor = &sup})();
    auto ended = at::background_task([] { return 6; }, {.supervisor = &sup})();
    ended.wait();
    auto failing = at::background_task([]() -> int { throw std::runtime_error("task failed"); },
                                       {.supervisor = &sup})();
    failing.wait();
    Outcome<int> a, b, c;
    std::latch done{3};
    await_into(at::resume_on(gated, on_runner), a, done);
    await_into(at::resume_on(ended, on_runner), b, done);
    await_into(at::resume_on(failing, [&runner](std::coroutine_handle<> h) { runner.post(h); }), c, done);
    gate.open();
    done.wait();
    CHECK(a.value == 5);
    CHECK(b.value == 6);
    REQUIRE(c.error);
    CHECK(message_of(c.error) == "task failed");
    for (const auto* out : {&a, &b, &c}) CHECK(out->after == runner.id());
    sup.stop();
}

TEST_CASE("coroutine: a scheduler that throws makes co_await throw its exception" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    auto refuse = [](std::coroutine_handle<>) { throw std::runtime_error("scheduler is full"); };
    Gate gate;
    std::thread::id ran_on;
    auto gated = at::background_task(
        [&] {
            gate.wait();
            ran_on = std::this_thread::get_id();
            return 1;
        },
        {.supervisor = &sup})();
    auto ended = at::background_task([] { return 2; }, {.supervisor = &sup})();
    ended.wait();
    Outcome<int> a, b;
    std::latch done{2};
    await_into(at::resume_on(gated, refuse), a, done);
    await_into(at::resume_on(ended, refuse), b, done);
    CHECK(b.after == std::this_thread::get_id());  // went on where it awaited
    gate.open();
    done.wait();
    CHECK(a.after == ran_on);  // went on where the task ended
    for (const auto* out : {&a, &b}) {
        REQUIRE(out->error);
        CHECK(message_of(out->error) == "scheduler is full");
    }
    sup.stop();
}
