// at::async_wait(task, token): a Task awaited with Boost.Asio completion
// tokens (use_awaitable, use_future, deferred, callbacks). The handler runs
// through its associated executor, which has work until then; a failed
// task's exception arrives as the handler's exception_ptr.
#include <doctest/doctest.h>

#include <atasker/asio.hpp>
#include <atasker/atasker.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <exception>
#include <future>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>

#include "test_support.hpp"

namespace at = atasker;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using test_support::current_thread;
using test_support::Gate;
using test_support::message_of;

TEST_CASE("asio: an awaitable on an io_context co_awaits a task and goes on on the io_context's thread" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    auto gated = at::background_task(
        [&gate] {
            gate.wait();
            return 42;
        },
        {.supervisor = &sup});
    auto task = gated();
    asio::io_context io;
    std::latch suspending{1};
    std::thread::id resumed_on;
    auto result = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<int> {
            suspending.count_down();
            const int r = co_await at::async_wait(task, asio::use_awaitable);
            resumed_on = current_thread();
            co_return r;
        },
        asio::use_future);
    bool finished_before_run_returned = false;
    std::thread io_thread([&] {
        io.run();  // returns early if nothing keeps the io_context busy while the task runs
        finished_before_run_returned = result.wait_for(0s) == std::future_status::ready;
    });
    const auto io_thread_id = io_thread.get_id();
    suspending.wait();
    gate.open();
    io_thread.join();
    CHECK(finished_before_run_returned);
    CHECK(result.get() == 42);
    CHECK(resumed_on == io_thread_id);
    sup.stop();
}

TEST_CASE("asio: a failed or canceled task's exception is thrown in the awaitable" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    auto fail = at::background_task([]() -> int { throw std::runtime_error("disk full"); }, {.supervisor = &sup});
    auto failed = fail();
    auto later = at::background_task([] {}, {.delay = 1h, .supervisor = &sup})();
    asio::io_context io;
    std::string failure;
    bool canceled = false;
    auto done = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            try {
                (void)co_await at::async_wait(failed, asio::use_awaitable);
            } catch (const std::runtime_error& e) {
                failure = e.what();
            }
            try {
                co_await at::async_wait(later, asio::use_awaitable);
            } catch (const at::CanceledError&) {
                canceled = true;
            }
        },
        asio::use_future);
    // From the io_context's thread: the awaitable sees CanceledError whether
    // it waits for the task yet or not.
    asio::post(io, [&later] { CHECK(later.cancel()); });
    io.run();
    done.get();
    CHECK(failure == "disk full");
    CHECK(canceled);
    sup.stop();
}

TEST_CASE("asio: a callback bound to an io_context gets (exception_ptr, R) there, never within async_wait" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    auto task = at::background_task([] { return std::string("value"); }, {.supervisor = &sup})();
    task.wait();  // ended: the handler must still wait for the io_context
    auto void_task = at::background_task([] {}, {.supervisor = &sup})();
    asio::io_context io;
    int calls = 0;
    std::string got;
    std::exception_ptr error = std::make_exception_ptr(std::logic_error("not called"));
    std::thread::id called_on;
    at::async_wait(task, asio::bind_executor(io, [&](std::exception_ptr e, std::string v) {
                       ++calls;
                       error = e;
                       got = std::move(v);
                       called_on = std::this_thread::get_id();
                   }));
    CHECK(calls == 0);
    int void_calls = 0;
    at::async_wait(void_task, asio::bind_executor(io, [&](std::exception_ptr e) {
                       CHECK_FALSE(e);
                       ++void_calls;
                   }));
    io.run();  // returns once both handlers ran
    CHECK(calls == 1);
    CHECK_FALSE(error);
    CHECK(got == "value");
    CHECK(called_on == std::this_thread::get_id());
    CHECK(void_calls == 1);
    sup.stop();
}

TEST_CASE("asio: a callback without an executor runs on the thread that ended the task" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    std::thread::id ran_on;
    auto task = at::background_task(
        [&] {
            gate.wait();
            ran_on = std::this_thread::get_id();
            throw std::invalid_argument("bad key");
        },
        {.supervisor = &sup})();
    std::latch called{1};
    std::thread::id called_on;
    std::string failure;
    at::async_wait(task, [&](std::exception_ptr e) {
        called_on = std::this_thread::get_id();
        failure = message_of(e);
        called.count_down();
    });
    gate.open();
    called.wait();
    CHECK(called_on == ran_on);
    CHECK(failure == "bad key");
    sup.stop();
}

TEST_CASE("asio: use_future holds the value or the task's exception" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    auto square = at::background_task([](int x) { return x * x; }, {.supervisor = &sup});
    auto fail = at::background_task([]() -> int { throw std::out_of_range("too far"); }, {.supervisor = &sup});
    auto nothing = at::background_task([] {}, {.supervisor = &sup});
    std::future<int> value = at::async_wait(square(7), asio::use_future);
    std::future<int> failure = at::async_wait(fail(), asio::use_future);
    std::future<void> done = at::async_wait(nothing(), asio::use_future);
    CHECK(value.get() == 49);
    CHECK_THROWS_WITH_AS(failure.get(), "too far", std::out_of_range);
    done.get();
    sup.stop();
}

TEST_CASE("asio: deferred makes an operation that waits once it is given a token" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    auto task = at::background_task(
        [&gate] {
            gate.wait();
            return 9;
        },
        {.supervisor = &sup})();
    auto wait = at::async_wait(task, asio::deferred);
    asio::io_context io;
    auto result = asio::co_spawn(
        io, [&]() -> asio::awaitable<int> { co_return co_await std::move(wait)(asio::use_awaitable); },
        asio::use_future);
    asio::post(io, [&gate] { gate.open(); });
    io.run();
    CHECK(result.get() == 9);
    sup.stop();
}

TEST_CASE("asio: a cancellation through the handler's slot ends the wait with operation_aborted; the task goes on" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    auto gated = at::background_task(
        [&gate] {
            gate.wait();
            return 5;
        },
        {.supervisor = &sup});
    auto task = gated();
    asio::io_context io;
    asio::cancellation_signal signal;
    std::exception_ptr error;
    int calls = 0;
    at::async_wait(task, asio::bind_cancellation_slot(signal.slot(), asio::bind_executor(io, [&](std::exception_ptr e,
                                                                                                   int) {
                                                          ++calls;
                                                          error = e;
                                                      })));
    asio::post(io, [&signal] { signal.emit(asio::cancellation_type::terminal); });
    io.run();
    CHECK(calls == 1);
    REQUIRE(error);
    try {
        std::rethrow_exception(error);
    } catch (const boost::system::system_error& e) {
        CHECK(e.code() == asio::error::operation_aborted);
    }

    // awaitable_operators: the timer wins, the wait for the task is canceled.
    using namespace asio::experimental::awaitable_operators;
    io.restart();
    auto raced = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<std::size_t> {
            asio::steady_timer timer(io, 0s);
            auto winner = co_await (at::async_wait(task, asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
            co_return winner.index();
        },
        asio::use_future);
    io.run();
    CHECK(raced.get() == 1);
    CHECK_FALSE(task.ready());
    gate.open();
    CHECK(task.get() == 5);
    sup.stop();
}

TEST_CASE("asio: async_wait on an empty handle throws at::Error saying what to do") {
    at::Task<int> empty;
    CHECK_THROWS_WITH_AS((void)at::async_wait(empty, asio::use_future),
                         "async_wait() got an empty Task handle; give it a task from background_task()", at::Error);
}
