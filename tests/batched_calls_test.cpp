// Tasks that ride together: while every worker process is busy and tasks
// wait, a worker takes several of them with one wake-up (PoolOptions::
// batch_time). Real worker processes, real crashes and kills.
//
// Own main: at::init() must fork the zygote before anything starts a thread.
// The test cases share the default supervisor; each sets the pool it needs.

#include <doctest/doctest.h>

#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include <atasker/atasker.hpp>

#include "crash_task.hpp"
#include "blocking_task.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::blocker;
using test_support::order;
using test_support::release;
using test_support::started;

namespace {

const at::MpTask square{"square", [](int x) { return x * x; }};
const at::MpTask whoami{"whoami", [] { return static_cast<int>(::getpid()); }};
const at::MpTask labeled{"labeled", [](char label) {
                             order.send(label);
                             return static_cast<int>(::getpid());
                         }};

struct Occupied {
    at::Task<char> task;  // the blocker
    int pid;              // its worker process
};

/// One worker, busy with a blocker labeled `label` once this returns; the
/// pool has run a call before, so the pace of calls is known.
Occupied occupy_one_worker(std::chrono::nanoseconds batch_time, char label) {
    at::task_supervisor.set_mp_pool({.pool_size = 1, .batch_time = batch_time});
    const int pid = at::background_task(whoami)().get();
    auto running = at::background_task(blocker)(label);
    CHECK(started.receive() == label);
    return {running, pid};
}

std::set<at::SystemTime> start_times(const std::vector<at::Task<int>>& tasks) {
    std::set<at::SystemTime> out;
    for (const auto& t : tasks) out.insert(*t.info()->time_started);
    return out;
}

}  // namespace

TEST_CASE("batches: tasks waiting for a busy worker ride in one request, next in line first, each with its own result" *
          doctest::timeout(30)) {
    auto [first, pid] = occupy_one_worker(1s, 'a');
    std::vector<at::Task<int>> tasks;
    const std::string normal = "cdefghij";
    for (const char label : normal) tasks.push_back(at::background_task(labeled)(label));
    for (const char label : std::string("AB")) tasks.push_back(at::background_task(labeled, at::Priority::high)(label));
    release.send();
    CHECK(first.get() == 'x');
    at::wait_completed(tasks, 20s);
    CHECK(order.receive(10) == "AB" + normal);
    // Taken together, they started together, all in the one worker.
    CHECK(start_times(tasks).size() == 1);
    for (const auto& t : tasks) CHECK(t.get() == pid);
    CHECK(at::task_supervisor.get_info().mp_pool.running == std::array<std::size_t, 4>{});
}

TEST_CASE("batches: with batch_time 0 each task has a wake-up of its own" * doctest::timeout(30)) {
    auto first = occupy_one_worker(0ns, 'a').task;
    std::vector<at::Task<int>> tasks;
    for (const char label : std::string("klmn")) tasks.push_back(at::background_task(labeled)(label));
    release.send();
    CHECK(first.get() == 'x');
    at::wait_completed(tasks, 20s);
    CHECK(order.receive(4) == "klmn");
    CHECK(start_times(tasks).size() == 4);
}

TEST_CASE("batches: a task canceled while it rides, before its worker starts it, is withdrawn; the others complete" *
          doctest::timeout(30)) {
    auto [first, pid] = occupy_one_worker(1s, 'a');
    auto head = at::background_task(blocker)('b');
    auto x = at::background_task(square)(3);
    auto y = at::background_task(square)(4);
    auto z = at::background_task(whoami)();
    release.send();
    CHECK(first.get() == 'x');
    CHECK(started.receive() == 'b');  // the request with x, y and z is in the worker
    CHECK(y.status() == at::TaskStatus::started);
    CHECK(y.cancel());
    release.send();
    CHECK(head.get() == 'x');
    CHECK(x.get() == 9);
    CHECK(z.get() == pid);  // the worker went on after the withdrawn one
    CHECK_THROWS_WITH_AS((void)y.get(),
                         doctest::Contains("was canceled before its worker process started it"), at::CanceledError);
    CHECK(y.status() == at::TaskStatus::canceled);
}

TEST_CASE("batches: canceling the running task of a request kills its worker; the tasks behind it run on a fresh one" *
          doctest::timeout(30)) {
    auto [first, pid] = occupy_one_worker(1s, 'a');
    auto head = at::background_task(blocker)('b');
    auto x = at::background_task(whoami)();
    auto y = at::background_task(square)(6);
    release.send();
    CHECK(first.get() == 'x');
    CHECK(started.receive() == 'b');
    CHECK(x.status() == at::TaskStatus::started);
    CHECK(head.cancel());
    CHECK_THROWS_AS((void)head.get(), at::CanceledError);
    CHECK(y.get() == 36);
    CHECK(x.get() != pid);
    CHECK(x.get() > 0);
}

TEST_CASE("batches: a task that kills its worker in a request fails alone; the tasks behind it run on a fresh one" *
          doctest::timeout(30)) {
    for (const auto& [how, message] : test_support::crash_deaths) {
        auto first = occupy_one_worker(1s, 'a').task;
        auto crashing = at::background_task(test_support::crash)(how);
        auto x = at::background_task(square)(7);
        auto y = at::background_task(whoami)();
        release.send();
        CHECK(first.get() == 'x');
        CHECK_THROWS_WITH_AS((void)crashing.get(), doctest::Contains(std::string(message).c_str()), at::RemoteError);
        CHECK(x.get() == 49);
        CHECK(y.get() > 0);
        CHECK(start_times({x, y}).size() == 1);  // they had ridden with it
    }
}

TEST_CASE("batches: 20,000 tasks of every priority through 2 workers, each result right" * doctest::timeout(120)) {
    at::task_supervisor.set_mp_pool({.pool_size = 2});
    const at::Priority priorities[] = {at::Priority::low, at::Priority::normal, at::Priority::high,
                                       at::Priority::critical};
    std::vector<at::Task<int>> tasks;
    for (int i = 0; i < 20000; ++i) tasks.push_back(at::background_task(square, priorities[i % 4])(i % 1000));
    at::wait_completed(tasks, 100s);
    for (int i = 0; i < 20000; ++i) REQUIRE(tasks[static_cast<std::size_t>(i)].get() == (i % 1000) * (i % 1000));
    const auto info = at::task_supervisor.get_info().mp_pool;
    CHECK(info.running == std::array<std::size_t, 4>{});
    CHECK(info.queued == std::array<std::size_t, 4>{});
    at::task_supervisor.stop();
}

int main(int argc, char** argv) {
    test_support::open_pipes();
    at::init({.max_workers = 4, .slot_size = 64 * 1024});
    at::task_supervisor.start();
    doctest::Context context(argc, argv);
    return context.run();
}
