// co_apply and co_mp_apply awaited from Boost.Fiber fibers: a waiting fiber
// suspends only itself, and its thread keeps running the others.
//
// Own main: at::init() must fork the zygote before anything starts a thread.

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <boost/fiber/all.hpp>

#include <atasker/atasker.hpp>

#include "crash_task.hpp"
#include "one_cpu.hpp"
#include "pipe_signal.hpp"
#include "value_segments.hpp"

namespace at = atasker;
using test_support::PipeSignal;
using test_support::crash;

namespace {
PipeSignal started;  // worker -> test: the task is running
PipeSignal release;  // test -> worker: go on

const at::MpTask cube{"cube", [](int x) { return x * x * x; }};
const at::MpTask shout{"shout", [](std::string s) { return s + "!"; }};
const at::MpTask refuse{"refuse", [](int) -> int { throw std::out_of_range("too far"); }};
const at::MpTask blocker{"blocker", [](at::Progress p, char label) {
                             p.report(0.25);
                             started.send(label);
                             return release.receive();
                         }};

/// The process task that is running, from the records.
std::optional<at::TaskInfo> running_process_task() {
    for (const auto& info : at::task_supervisor.get_tasks(at::TaskType::mp))
        if (info.status == at::TaskStatus::started) return info;
    return std::nullopt;
}
}  // namespace

TEST_CASE("fiber: 1,000 fibers on one thread await co_mp_apply while another fiber keeps ticking" *
          doctest::timeout(60)) {
    constexpr int n = 1000;
    std::vector<int> results(n, -1);
    std::atomic<long> ticks{0};
    int suspended_while_ticking = 0;  // fibers whose wait let the ticker run
    bool all_done = false;
    std::thread::id fiber_thread;
    {
        boost::fibers::fiber ticker([&] {
            while (!all_done) {
                ++ticks;
                boost::this_fiber::yield();
            }
        });
        std::vector<boost::fibers::fiber> waiters;
        waiters.reserve(n);
        for (int i = 0; i < n; ++i) {
            waiters.emplace_back([&, i] {
                auto f = at::co_mp_apply(cube, std::tuple{i}, {.priority = at::Priority::high});
                const long before = ticks.load();
                results[static_cast<std::size_t>(i)] = f.get();  // suspends this fiber only
                if (ticks.load() > before) ++suspended_while_ticking;
                fiber_thread = std::this_thread::get_id();
            });
        }
        for (auto& w : waiters) w.join();
        all_done = true;
        ticker.join();
    }
    for (int i = 0; i < n; ++i) CHECK(results[static_cast<std::size_t>(i)] == i * i * i);
    CHECK(fiber_thread == std::this_thread::get_id());  // every fiber ran on this thread
    // Had get() blocked the thread, the ticker could not have run during any wait.
    CHECK(suspended_while_ticking > 0);
}

TEST_CASE("fiber: a process task's exception reaches the awaiting fiber as RemoteError" * doctest::timeout(30)) {
    std::string type;
    boost::fibers::fiber([&] {
        try {
            (void)at::co_mp_apply(refuse, std::tuple{1}).get();
        } catch (const at::RemoteError& e) {
            type = e.type_name() + ": " + e.what();
        }
    }).join();
    CHECK(type == "std::out_of_range: too far");
}

TEST_CASE("fiber: co_apply awaits a thread task, with its result or its exception" * doctest::timeout(30)) {
    int value = 0;
    std::string error;
    boost::fibers::fiber([&] {
        value = at::co_apply([](int a, int b) { return a + b; }, std::tuple{2, 3}).get();
        try {
            at::co_apply([] { throw std::runtime_error("thread task failed"); }).get();
        } catch (const std::runtime_error& e) {
            error = e.what();
        }
    }).join();
    CHECK(value == 5);
    CHECK(error == "thread task failed");
}

TEST_CASE("fiber: co_apply and co_mp_apply take arguments one by one, after options, or as one tuple" *
          doctest::timeout(30)) {
    const auto add = [](int a, int b) { return a + b; };
    const auto first_of = [](const std::tuple<int, int>& t) { return std::get<0>(t); };
    std::vector<int> seen;
    boost::fibers::fiber([&] {
        seen.push_back(at::co_apply(add, 2, 3).get());
        seen.push_back(at::co_apply(add, {.priority = at::Priority::high}, 4, 5).get());
        seen.push_back(at::co_apply(add, std::tuple{6, 7}).get());
        seen.push_back(at::co_apply(add, std::tuple{8, 9}, {.name = "tuple form"}).get());
        seen.push_back(at::co_apply([] { return 1; }).get());
        // One tuple as the task's only argument: options first make it one argument.
        seen.push_back(at::co_apply(first_of, at::TaskOptions{}, std::tuple{10, 11}).get());
        seen.push_back(at::co_mp_apply(cube, 2).get());
        seen.push_back(at::co_mp_apply(cube, {.priority = at::Priority::high}, 3).get());
        seen.push_back(at::co_mp_apply(cube, std::tuple{4}, {.priority = at::Priority::low}).get());
    }).join();
    CHECK(seen == std::vector<int>{5, 9, 13, 17, 1, 10, 8, 27, 64});
    // The options reach the task: a supervisor that was never started refuses it.
    at::TaskSupervisor idle;
    CHECK_THROWS_WITH_AS((void)at::co_apply(add, {.supervisor = &idle}, 1, 2),
                         "task supervisor is not started; call start() before putting tasks", at::Error);
    CHECK_THROWS_WITH_AS((void)at::co_mp_apply(cube, {.supervisor = &idle}, 1),
                         "task supervisor is not started; call start() before putting tasks", at::Error);
}

TEST_CASE("fiber: an aloop's fibers await process tasks; run() blocks the caller for the result" *
          doctest::timeout(30)) {
    at::ALoop& loop = at::task_supervisor.create_aloop("io");
    // run(): one fiber on the loop's thread, its result back on this thread.
    CHECK(loop.run([] { return at::co_mp_apply(cube, std::tuple{3}).get(); }) == 27);
    // background_task(): fibers started on the loop, awaiting at the same time.
    std::vector<boost::fibers::future<int>> futures;
    for (int i = 0; i < 10; ++i)
        futures.push_back(loop.background_task([i] { return at::co_mp_apply(cube, std::tuple{i}).get(); }));
    for (int i = 0; i < 10; ++i) CHECK(futures[static_cast<std::size_t>(i)].get() == i * i * i);
    // A process task's error reaches run()'s caller.
    CHECK_THROWS_AS(loop.run([] { return at::co_mp_apply(refuse, std::tuple{1}).get(); }), at::RemoteError);
    CHECK(at::task_supervisor.stop_aloop("io"));
}

TEST_CASE("aloop: a loop's direct call carries values larger than the slot both ways" * doctest::timeout(60)) {
    at::ALoop& loop = at::task_supervisor.create_aloop("large");
    const std::string big(3 << 20, 'q');  // the slots here hold 1 MiB
    CHECK(loop.run([&big] { return at::co_mp_apply(shout, big).get(); }) == big + "!");
    CHECK(test_support::our_segments().empty());
    CHECK(test_support::shm_fds().empty());
    CHECK(at::task_supervisor.stop_aloop("large"));
}

// From an aloop fiber, co_mp_apply carries the call to an idle worker
// itself and the loop completes the task; the cases below cover that path's
// ends: values, errors, deaths, cancel, progress and a loop stopped with a
// call in flight.

TEST_CASE("aloop: 1,000 fibers of one loop await co_mp_apply at once; values and errors come back" *
          doctest::timeout(60)) {
    at::ALoop& loop = at::task_supervisor.create_aloop("many");
    std::vector<boost::fibers::future<int>> futures;
    for (int i = 0; i < 1000; ++i)
        futures.push_back(loop.background_task([i] { return at::co_mp_apply(cube, std::tuple{i}).get(); }));
    for (int i = 0; i < 1000; ++i) CHECK(futures[static_cast<std::size_t>(i)].get() == i * i * i);
    // One at a time, each finds a worker idle.
    const int sum = loop.run([] {
        int total = 0;
        for (int i = 0; i < 200; ++i) total += at::co_mp_apply(cube, std::tuple{2}).get();
        return total;
    });
    CHECK(sum == 200 * 8);
    std::string error;
    loop.run([&error] {
        try {
            (void)at::co_mp_apply(refuse, std::tuple{1}).get();
        } catch (const at::RemoteError& e) {
            error = e.type_name() + ": " + e.what();
        }
    });
    CHECK(error == "std::out_of_range: too far");
    const auto info = at::task_supervisor.get_info();
    CHECK(info.mp_pool.running[0] + info.mp_pool.running[1] + info.mp_pool.running[2] + info.mp_pool.running[3] == 0);
    CHECK(info.mp_pool.idle == 2);  // every lane thread idle again: nothing left running
    CHECK(at::task_supervisor.stop_aloop("many"));
}

TEST_CASE("aloop: a worker that dies under a loop's call fails only that call, and the loop's next 200 succeed" *
          doctest::timeout(60)) {
    at::ALoop& loop = at::task_supervisor.create_aloop("deaths");
    for (const auto& [how, message] : test_support::crash_deaths) {
        CAPTURE(how);
        const std::string error = loop.run([how = how] {
            try {
                (void)at::co_mp_apply(crash, std::tuple{how}).get();
            } catch (const at::RemoteError& e) {
                return std::string(e.what());
            }
            return std::string("no error");
        });
        CHECK(error == message);
        const int sum = loop.run([] {
            int total = 0;
            for (int i = 0; i < 200; ++i) total += at::co_mp_apply(cube, std::tuple{i % 3}).get();
            return total;
        });
        CHECK(sum == 67 * 1 + 66 * 8);  // i % 3 over 0..199: 67 ones, 66 twos
    }
    CHECK(at::task_supervisor.stop_aloop("deaths"));
}

TEST_CASE("aloop: on one CPU with its workers, a loop's calls bring back values, errors and a death; every "
          "worker comes back" * doctest::timeout(60)) {
    // The worker usually answers within the post here, so the loop completes
    // most calls before their fiber waits (the path of a pinned caller).
    const test_support::OneCpu one_cpu;
    REQUIRE(one_cpu.pinned() >= 2);  // at least this thread and the zygote
    at::ALoop& loop = at::task_supervisor.create_aloop("one cpu");
    const auto [sum, errors, death, after] = loop.run([] {
        int total = 0;
        int refused = 0;
        for (int i = 0; i < 300; ++i) {
            if (i % 50 == 49) {
                try {
                    (void)at::co_mp_apply(refuse, std::tuple{i}).get();
                } catch (const at::RemoteError& e) {
                    refused += e.type_name() == "std::out_of_range" ? 1 : 0;
                }
            } else {
                total += at::co_mp_apply(cube, std::tuple{i % 3}).get();
            }
        }
        std::string error = "no error";
        try {
            (void)at::co_mp_apply(crash, std::tuple{1}).get();
        } catch (const at::RemoteError& e) {
            error = e.what();
        }
        int later = 0;
        for (int i = 0; i < 100; ++i) later += at::co_mp_apply(cube, std::tuple{2}).get();
        return std::tuple{total, refused, error, later};
    });
    // i % 3 over 0..299 without 49, 99, ..., 299 (i % 3: 1, 0, 2, 1, 0, 2).
    int expected = 0;
    for (int i = 0; i < 300; ++i)
        if (i % 50 != 49) expected += (i % 3) * (i % 3) * (i % 3);
    CHECK(sum == expected);
    CHECK(errors == 6);
    CHECK(death == "worker process killed by signal 9 (SIGKILL)");
    CHECK(after == 800);
    const auto info = at::task_supervisor.get_info();
    CHECK(info.mp_pool.running[0] + info.mp_pool.running[1] + info.mp_pool.running[2] + info.mp_pool.running[3] == 0);
    CHECK(info.mp_pool.workers >= 1);
    CHECK(info.mp_pool.idle == info.mp_pool.workers);  // every lane thread idle again
    CHECK(at::task_supervisor.stop_aloop("one cpu"));
}

TEST_CASE("aloop: canceling a loop's running process task kills its worker; the fiber sees CanceledError" *
          doctest::timeout(30)) {
    at::ALoop& loop = at::task_supervisor.create_aloop("cancel");
    auto outcome = loop.background_task([] {
        try {
            (void)at::co_mp_apply(blocker, std::tuple{'c'}).get();
            return std::string("completed");
        } catch (const at::CanceledError&) {
            return std::string("canceled");
        }
    });
    CHECK(started.receive() == 'c');
    const auto running = running_process_task();
    REQUIRE(running.has_value());
    CHECK(running->progress == doctest::Approx(0.25));  // live from the worker
    CHECK(at::task_supervisor.cancel_task(running->id));
    CHECK(outcome.get() == "canceled");
    CHECK(at::task_supervisor.get_task_info(running->id)->status == at::TaskStatus::canceled);
    CHECK(loop.run([] { return at::co_mp_apply(cube, std::tuple{4}).get(); }) == 64);
    CHECK(at::task_supervisor.stop_aloop("cancel"));
}

TEST_CASE("aloop: stopping a loop waits for a process task its fiber put and never awaited" *
          doctest::timeout(30)) {
    at::ALoop& loop = at::task_supervisor.create_aloop("orphan");
    // The fiber ends at once; its task is still the loop's to complete.
    loop.run([] { (void)at::co_mp_apply(blocker, std::tuple{'o'}); });
    CHECK(started.receive() == 'o');
    const auto running = running_process_task();
    REQUIRE(running.has_value());
    std::thread stopper([&loop] { loop.stop(true); });
    release.send('r');
    stopper.join();
    // The loop completed the task before its thread ended.
    const auto info = at::task_supervisor.get_task_info(running->id);
    REQUIRE(info.has_value());
    CHECK(info->status == at::TaskStatus::completed);
    CHECK(info->progress == doctest::Approx(1.0));
}

int main(int argc, char** argv) {
    started.open();
    release.open();
    at::init({.max_workers = 4});
    at::task_supervisor.set_thread_pool({.pool_size = 2});
    at::task_supervisor.set_mp_pool({.pool_size = 2});
    at::task_supervisor.start();
    doctest::Context context(argc, argv);
    const int rc = context.run();
    at::task_supervisor.stop();
    return rc;
}
