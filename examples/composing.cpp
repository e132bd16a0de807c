// Composing tasks: when_any (the first of several to finish), as_completed
// (a loop in completion order), TaskGroup (tasks that succeed or fail
// together, thread and process tasks alike) and wait_idle (until the
// supervisor has nothing left to do).
#include <atasker/atasker.hpp>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include <fmt/core.h>

namespace at = atasker;
using namespace std::chrono_literals;

inline const at::MpTask square{"square", [](int x) { return x * x; }};

void expect(bool ok, const char* what) {
    if (!ok) throw std::logic_error(fmt::format("unexpected result: {}", what));
}

int main() try {
    at::init();  // first thing: process tasks come below
    at::task_supervisor.set_thread_pool({.pool_size = 4});
    at::task_supervisor.set_mp_pool({.pool_size = 2});
    at::task_supervisor.start();

    // 1. when_any: the index of the first task to finish; the others run on.
    std::vector<at::Task<std::string>> mirrors;
    for (const char* host : {"eu", "us", "ap"})
        mirrors.push_back(at::background_task([](std::string h) { return h + ": ok"; })(std::string(host)));
    const std::size_t first = at::when_any(mirrors, 5s);
    expect(mirrors[first].ready(), "the first to finish is ready");
    fmt::print("first answer: {}\n", mirrors[first].get());

    // 2. as_completed: each task once, in the order they finish.
    std::vector<at::Task<int>> jobs;
    for (int i = 0; i < 10; ++i) jobs.push_back(at::background_task([](int x) { return x * x; })(i));
    int sum = 0;
    for (at::Task<int>& t : at::as_completed(jobs, 5s)) sum += t.get();
    expect(sum == 285, "every square, once");

    // 3. A task group: the first failure cancels the rest and wait() lists it.
    at::TaskGroup group({.priority = at::Priority::high});
    auto sq = group.background_task(square)(7);  // in a worker process
    auto words = group.background_task([](std::stop_token stop, std::string text) {
        return stop.stop_requested() ? 0 : 1 + static_cast<int>(std::count(text.begin(), text.end(), ' '));
    })(std::string("to be or not"));
    group.wait();
    expect(sq.get() == 49 && words.get() == 4, "a group that succeeded");

    at::TaskGroup failing;
    auto bad = failing.background_task([]() -> int { throw std::invalid_argument("no such user"); }, {.name = "lookup"})();
    try {
        failing.wait();
        expect(false, "wait() throws");
    } catch (const at::TaskGroupError& e) {
        expect(e.failures().size() == 1 && e.failures()[0].id == bad.id(), "the failure is listed");
        fmt::print("{}\n", e.what());  // 1 of the group's tasks failed: task ... 'lookup': no such user
    }

    // 4. wait_idle: every task put before has ended (callbacks included).
    std::atomic<int> indexed{0};
    for (int i = 0; i < 100; ++i) at::background_task([&indexed] { ++indexed; })();  // fire and forget
    at::task_supervisor.wait_idle();
    expect(indexed == 100, "all 100 ran");

    at::task_supervisor.stop();
    fmt::print("composing: all checks passed\n");
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "composing: {}\n", e.what());
    return 1;
}
