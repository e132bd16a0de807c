// An Asio server's handlers hand heavy work to the supervisor's pool and
// await it with at::async_wait, going on on the io_context's thread; a
// handler with a deadline races its task against a timer.
#include <atasker/asio.hpp>
#include <atasker/atasker.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <string>
#include <vector>

namespace at = atasker;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

/// CPU-heavy work that must not run on the io_context's thread.
long sum_of_squares(long n) {
    long sum = 0;
    for (long i = 1; i <= n; ++i) sum += i * i;
    return sum;
}

const auto compute = at::background_task(sum_of_squares, at::Priority::normal);
const auto parse = at::background_task([](const std::string& s) { return std::stol(s); });

/// One request: parse, compute, answer; every step after a co_await runs on
/// the io_context's thread again.
asio::awaitable<std::string> handle(std::string request) {
    try {
        auto parsed = parse(request);
        const long n = co_await at::async_wait(parsed, asio::use_awaitable);
        auto sum = compute(n);
        const long total = co_await at::async_wait(sum, asio::use_awaitable);
        co_return fmt::format("{} -> {}", request, total);
    } catch (const std::invalid_argument&) {
        co_return fmt::format("{} -> not a number", request);  // the task's exception, thrown here
    }
}

/// A request with a deadline: when the timer wins, the wait ends and the
/// task is canceled (a thread task is asked to stop; this one just ends).
asio::awaitable<std::string> handle_with_deadline(std::latch& gate) {
    auto slow = at::background_task([&gate] {
        gate.wait();  // held until the deadline has passed
        return 1L;
    })();
    asio::steady_timer deadline(co_await asio::this_coro::executor, 10ms);
    auto first = co_await (at::async_wait(slow, asio::use_awaitable) || deadline.async_wait(asio::use_awaitable));
    const bool timed_out = first.index() == 1;
    if (timed_out) (void)slow.cancel();  // the timer canceled the wait, not the task
    gate.count_down();
    co_return std::string(timed_out ? "slow -> timed out" : "slow -> in time");
}

}  // namespace

int main() {
    at::task_supervisor.set_thread_pool({.pool_size = 2});
    at::task_supervisor.start();
    asio::io_context io;
    std::vector<std::string> answers;
    std::latch gate{1};
    for (const char* request : {"3", "1000", "many"})
        asio::co_spawn(io, handle(request), [&answers](std::exception_ptr, std::string answer) {
            answers.push_back(std::move(answer));  // on the io_context's thread: no lock needed
        });
    asio::co_spawn(io, handle_with_deadline(gate),
                   [&answers](std::exception_ptr, std::string answer) { answers.push_back(std::move(answer)); });
    io.run();  // returns once every handler has answered: awaited tasks keep it busy
    for (const auto& a : answers) fmt::print("{}\n", a);
    at::task_supervisor.stop();
    const bool ok = answers.size() == 4 &&
                    std::find(answers.begin(), answers.end(), "3 -> 14") != answers.end() &&
                    std::find(answers.begin(), answers.end(), "1000 -> 333833500") != answers.end() &&
                    std::find(answers.begin(), answers.end(), "many -> not a number") != answers.end() &&
                    std::find(answers.begin(), answers.end(), "slow -> timed out") != answers.end();
    return ok ? 0 : 1;
}
