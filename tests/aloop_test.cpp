// Boost.Fiber switches stacks, which ThreadSanitizer cannot follow: this
// executable is in the 'fiber' suite, left out of TSan runs.
#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <boost/fiber/all.hpp>

#include <atomic>
#include <coroutine>
#include <latch>
#include <semaphore>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::Eager;
using test_support::Gate;

TEST_CASE("aloop: run blocks the caller for a fiber's result on the loop's thread" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("calc");
    CHECK(loop.name() == "calc");
    CHECK(loop.is_active());
    CHECK(sup.get_aloop("calc") == &loop);
    CHECK(sup.get_aloop("nope") == nullptr);
    const auto caller = std::this_thread::get_id();
    const auto where = loop.run([] { return std::this_thread::get_id(); });
    CHECK(where != caller);
    CHECK(loop.run([] { return 6 * 7; }) == 42);
    loop.run([] {});  // void
    CHECK(loop.run([where] { return std::this_thread::get_id() == where; }));  // one thread for all fibers
    sup.stop();
    CHECK(sup.get_aloop("calc") == nullptr);  // the supervisor's stop stopped and forgot it
}

TEST_CASE("aloop: an exception thrown in a fiber reaches run's caller and the future" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("errors");
    CHECK_THROWS_WITH_AS(loop.run([]() -> int { throw std::invalid_argument("bad fiber"); }), "bad fiber",
                         std::invalid_argument);
    auto f = loop.background_task([] { throw std::runtime_error("later"); });
    CHECK_THROWS_WITH_AS(f.get(), "later", std::runtime_error);
    CHECK(loop.run([] { return 1; }) == 1);  // the loop goes on
    sup.stop();
}

TEST_CASE("aloop: background_task returns futures of fibers started in order" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("order");
    std::vector<int> order;  // touched by the loop's fibers only: one thread
    std::vector<boost::fibers::future<int>> futures;
    for (int i = 0; i < 100; ++i)
        futures.push_back(loop.background_task([i, &order] {
            order.push_back(i);
            return i * i;
        }));
    for (int i = 0; i < 100; ++i) CHECK(futures[static_cast<std::size_t>(i)].get() == i * i);
    std::vector<int> expected(100);
    for (int i = 0; i < 100; ++i) expected[static_cast<std::size_t>(i)] = i;
    CHECK(loop.run([&order] { return order; }) == expected);
    sup.stop();
}

TEST_CASE("aloop: two fibers on one loop ping-pong through an unbuffered channel" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("pingpong");
    boost::fibers::unbuffered_channel<int> ping;
    boost::fibers::unbuffered_channel<int> pong;
    std::vector<std::string> trace;  // fibers of one loop: one thread
    auto a = loop.background_task([&] {
        for (int i = 0; i < 5; ++i) {
            trace.push_back(fmt::format("ping {}", i));
            ping.push(i);
            int back = 0;
            pong.pop(back);
            CHECK(back == i + 100);
        }
        ping.close();
    });
    auto b = loop.background_task([&] {
        int v = 0;
        while (ping.pop(v) == boost::fibers::channel_op_status::success) {
            trace.push_back(fmt::format("pong {}", v));
            pong.push(v + 100);
        }
    });
    a.get();
    b.get();
    const auto t = loop.run([&] { return trace; });
    REQUIRE(t.size() == 10);
    for (std::size_t i = 0; i < 5; ++i) {
        CHECK(t[2 * i] == fmt::format("ping {}", i));
        CHECK(t[2 * i + 1] == fmt::format("pong {}", i));
    }
    sup.stop();
}

TEST_CASE("aloop: a fiber waiting for a thread task suspends only itself" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("await");
    Gate gate;
    std::latch task_started{1};
    std::atomic<int> ticks{0};
    boost::fibers::unbuffered_channel<int> tick_channel;
    auto waiter = loop.background_task([&] {
        // The completion side owns the promise (DESIGN.md: Fibers).
        auto promise = std::make_shared<boost::fibers::promise<int>>();
        auto future = promise->get_future();
        at::background_task(
            [&] {
                task_started.count_down();
                gate.wait();
                return 7;
            },
            {.supervisor = &sup})
            .callback([promise](const at::Task<int>& t) { promise->set_value(t.get()); })();
        return future.get();  // suspends this fiber only
    });
    task_started.wait();
    // While the waiter is suspended, another fiber on the same loop runs.
    auto other = loop.background_task([&] {
        for (int i = 0; i < 10; ++i) {
            ++ticks;
            boost::this_fiber::yield();
        }
        return ticks.load();
    });
    CHECK(other.get() == 10);
    CHECK(waiter.wait_for(0ms) == boost::fibers::future_status::timeout);
    gate.open();
    CHECK(waiter.get() == 7);
    sup.stop();
}

TEST_CASE("aloop: Task::get() in a fiber suspends only that fiber while another fiber of the loop keeps ticking" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("get");
    constexpr int n = 1000;
    Gate gate;
    std::binary_semaphore ticked{0};
    // The loop's fibers share one thread: plain variables.
    bool waiter_back = false;
    int ticks_while_waiting = 0;
    auto waiter = loop.background_task([&] {
        auto task = at::background_task(
            [&gate] {
                gate.wait();
                return 7;
            },
            {.supervisor = &sup})();
        boost::fibers::fiber ticker([&] {
            for (int i = 0; i < n; ++i) {
                if (!waiter_back) ++ticks_while_waiting;
                boost::this_fiber::yield();
            }
            ticked.release();
        });
        const int r = task.get();  // blocking the thread would starve the ticker
        waiter_back = true;
        ticker.join();
        return r;
    });
    // Fails rather than hangs when get() blocks the loop's thread.
    const bool ticked_in_time = ticked.try_acquire_for(20s);
    CHECK(waiter.wait_for(0ms) == boost::fibers::future_status::timeout);
    gate.open();
    REQUIRE(ticked_in_time);
    CHECK(waiter.get() == 7);
    CHECK(ticks_while_waiting == n);
    sup.stop();
}

TEST_CASE("aloop: wait_for in a fiber is false at its timeout, true once the task ended; get() rethrows" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("wait_for");
    Gate gate;
    auto seen = loop.run([&] {
        auto task = at::background_task(
            [&gate] {
                gate.wait();
                return 3;
            },
            {.supervisor = &sup})();
        std::vector<bool> out;
        out.push_back(task.wait_for(1ms));
        out.push_back(task.wait_until(std::chrono::system_clock::now() + 1ms));
        gate.open();
        out.push_back(task.wait_for(20s));
        task.wait();
        out.push_back(task.ready() && task.get() == 3);
        return out;
    });
    CHECK(seen == std::vector<bool>{false, false, true, true});
    auto fail = at::background_task([]() -> int { throw std::invalid_argument("no such key"); }, {.supervisor = &sup});
    CHECK_THROWS_WITH_AS(loop.run([&fail] { return fail().get(); }), "no such key", std::invalid_argument);
    sup.stop();
}

TEST_CASE("aloop: 1,000 fibers wait_for tasks that end around their timeouts; every result comes back" *
          doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("races");
    constexpr int n = 1000;
    auto echo = at::background_task([](int i) { return i; }, {.supervisor = &sup});
    std::vector<boost::fibers::future<int>> futures;
    futures.reserve(n);
    for (int i = 0; i < n; ++i)
        futures.push_back(loop.background_task([&echo, i] {
            auto task = echo(i);
            // Each wait times out just before, during or after the end.
            (void)task.wait_for(std::chrono::microseconds(i % 50));
            return task.get();
        }));
    for (int i = 0; i < n; ++i) CHECK(futures[static_cast<std::size_t>(i)].get() == i);
    sup.stop();
}

TEST_CASE("aloop: a coroutine resumed on a loop through resume_on goes on in a fiber, where get() suspends it" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("coro");
    auto on_loop = [&loop](std::coroutine_handle<> h) { (void)loop.background_task(h); };
    auto twice = at::background_task([](int x) { return 2 * x; }, {.supervisor = &sup});
    std::latch done{1};
    bool on_loop_thread = false;
    int sum = 0;
    auto body = [&]() -> Eager {
        auto first = twice(3);
        sum += co_await at::resume_on(first, on_loop);
        on_loop_thread = loop.running_in_this_thread();
        sum += twice(4).get();  // in the loop's fiber: the hook waits
        done.count_down();
    };
    body();
    done.wait();
    CHECK(on_loop_thread);
    CHECK(sum == 14);
    sup.stop();
}

TEST_CASE("aloop: a stopped loop refuses fibers and create_aloop starts it again" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("again");
    CHECK_THROWS_WITH_AS(sup.create_aloop("again"),
                         "aloop 'again' already exists; use get_aloop(\"again\") or stop it first", at::Error);
    CHECK(sup.stop_aloop("again"));
    CHECK_FALSE(loop.is_active());
    CHECK_THROWS_WITH_AS(loop.run([] { return 1; }),
                         "aloop 'again' is stopped; start() it (or create_aloop() again) before putting fibers",
                         at::Error);
    CHECK(&sup.create_aloop("again") == &loop);
    CHECK(loop.run([] { return 2; }) == 2);
    CHECK_FALSE(sup.stop_aloop("missing"));
    sup.stop();
}

TEST_CASE("aloop: stop lets fibers already put run to their end" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("drain");
    std::atomic<int> done{0};
    std::vector<boost::fibers::future<void>> futures;
    for (int i = 0; i < 50; ++i)
        futures.push_back(loop.background_task([&] {
            boost::this_fiber::yield();
            ++done;
        }));
    loop.stop(true);
    CHECK(done == 50);
    sup.stop();
}

TEST_CASE("aloop: many fibers on small stacks" * doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("many", {.stack_size = 32 * 1024});
    constexpr int fibers = 10000;
    boost::fibers::barrier* barrier = nullptr;
    std::atomic<int> passed{0};
    loop.run([&] { barrier = new boost::fibers::barrier(fibers); });
    std::vector<boost::fibers::future<void>> futures;
    futures.reserve(fibers);
    for (int i = 0; i < fibers; ++i)
        futures.push_back(loop.background_task([&] {
            barrier->wait();  // all 10000 alive at once
            ++passed;
        }));
    for (auto& f : futures) f.get();
    CHECK(passed == fibers);
    loop.run([&] { delete barrier; });
    CHECK_THROWS_AS(at::ALoop("tiny", {.stack_size = 1024}), at::Error);
    sup.stop();
}

TEST_CASE("aloop: the default aloop is created on first use") {
    at::TaskSupervisor sup;
    CHECK_THROWS_AS(at::default_aloop(sup), at::Error);  // not started
    sup.start();
    at::ALoop& loop = at::default_aloop(sup);
    CHECK(loop.name() == "default");
    CHECK(&at::default_aloop(sup) == &loop);
    CHECK(sup.get_aloop("default") == &loop);
    CHECK(loop.run([] { return 3; }) == 3);
    sup.stop();
}

TEST_CASE("aloop: a standalone loop belongs to no supervisor" * doctest::timeout(30)) {
    at::ALoop loop("standalone");
    CHECK(loop.run([] { return std::string("ok"); }) == "ok");
    loop.stop();
    loop.start();
    CHECK(loop.run([] { return 5; }) == 5);
}

TEST_CASE("aloop: a fiber may stop the supervisor whose aloop runs it" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    at::ALoop& loop = sup.create_aloop("stopper");
    CHECK_FALSE(loop.running_in_this_thread());
    const bool stopped = loop.run([&sup, &loop] {
        CHECK(loop.running_in_this_thread());
        return sup.stop();  // stops this very loop too, without waiting for it
    });
    CHECK(stopped);
    CHECK_FALSE(sup.is_active());
    CHECK(sup.get_aloop("stopper") == nullptr);
    // Started again, the supervisor makes a new loop of that name.
    sup.start();
    CHECK(sup.create_aloop("stopper").run([] { return 8; }) == 8);
    sup.stop();
}
