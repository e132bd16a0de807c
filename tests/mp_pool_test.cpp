// The process pool through the supervisor: MpTasks put with background_task
// run in real forked worker processes; real crashes, timeouts, cancels,
// progress, priorities and a clean stop.
//
// Own main: at::init() must fork the zygote before anything starts a thread.
// The test cases share the default supervisor and run in file order; the last
// one stops it.

#include <doctest/doctest.h>

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <optional>
#include <tuple>
#include <cstdlib>
#include <latch>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <atasker/atasker.hpp>

#include "crash_task.hpp"
#include "blocking_task.hpp"
#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::blocker;
using test_support::order;
using test_support::release;
using test_support::started;
using test_support::crash;

namespace {

const at::MpTask square{"square", [](int x) { return x * x; }};
const at::MpTask whoami{"whoami", [] { return static_cast<int>(::getpid()); }};
// Work that takes longer than the pool's idle_timeout in the test below.
const at::MpTask slow_whoami{"slow_whoami", [] {
                                 std::this_thread::sleep_for(250ms);  // the work (the behaviour under test)
                                 return static_cast<int>(::getpid());
                             }};
const at::MpTask thrower{"thrower", [](std::string m) -> int { throw std::invalid_argument(m); }};
const at::MpTask echo{"echo", [](std::string s) { return s; }};

// A user type crosses through its serialize() member (cereal's customization point).
struct Point {
    int x = 0;
    double y = 0;
    std::string label;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(x, y, label);
    }
    bool operator==(const Point&) const = default;
};
using Nested = std::vector<std::map<std::string, std::optional<std::pair<int, double>>>>;
using Everything = std::tuple<bool, char, std::int64_t, std::uint16_t, float, double, std::string,
                              std::vector<int>, std::map<std::string, int>, std::optional<std::string>,
                              std::pair<int, std::string>, Nested, Point, std::vector<Point>>;
const at::MpTask identity{"identity", [](Everything e) { return e; }};

const at::MpTask labeled{"labeled", [](char label) { order.send(label); }};
const at::MpTask progressing{"progressing", [](at::Progress p, int x) {
                                 p.report(0.5);
                                 started.send();
                                 (void)release.receive();
                                 return x;
                             }};

}  // namespace

TEST_CASE("mp: a registered function runs in a worker process and its result comes back" * doctest::timeout(30)) {
    at::task_supervisor.set_mp_pool({.pool_size = 2});
    at::task_supervisor.start();
    auto t = at::background_task(square, at::Priority::high)(7);
    CHECK(t.get() == 49);
    const auto info = t.info();
    REQUIRE(info);
    CHECK(info->type == at::TaskType::mp);
    CHECK(info->status == at::TaskStatus::completed);
    CHECK(info->priority == at::Priority::high);
    CHECK(at::background_task(whoami)().get() != static_cast<int>(::getpid()));
    CHECK(at::background_task(echo)(std::string(1000, 'a')).get() == std::string(1000, 'a'));
}

TEST_CASE("mp: every supported type makes the round trip through a worker process" * doctest::timeout(30)) {
    const Nested nested = {{{"a", std::pair{1, 2.5}}, {"b", std::nullopt}}, {}};
    const Everything all{true,  'z',
                         -1234567890123LL, std::uint16_t{65535},
                         1.5F,  -2.25,
                         std::string(3000, 'q'), std::vector<int>{1, 2, 3},
                         std::map<std::string, int>{{"one", 1}, {"two", 2}}, std::optional<std::string>{"maybe"},
                         std::pair<int, std::string>{7, "seven"}, nested,
                         Point{3, 4.5, "p"}, std::vector<Point>{{1, 1.0, "a"}, {2, 2.0, ""}}};
    CHECK(at::background_task(identity)(all).get() == all);
    Everything empty{};
    CHECK(at::background_task(identity)(empty).get() == empty);
}

TEST_CASE("mp: an exception thrown in the worker comes back as RemoteError with its type and message" *
          doctest::timeout(30)) {
    auto t = at::background_task(thrower)(std::string("no such user"));
    try {
        (void)t.get();
        FAIL("get() did not throw");
    } catch (const at::RemoteError& e) {
        CHECK(e.type_name() == "std::invalid_argument");
        CHECK(std::string(e.what()) == "no such user");
    }
    CHECK(t.info()->status == at::TaskStatus::failed);
    CHECK(t.info()->error == "std::invalid_argument: no such user");
}

TEST_CASE("mp: a worker that dies fails only its task, and the pool serves the next 1,000" *
          doctest::timeout(60)) {
    for (const auto& [how, message] : test_support::crash_deaths) {
        CAPTURE(how);
        auto doomed = at::background_task(crash)(how);
        const std::string expected(message);
        CHECK_THROWS_WITH_AS((void)doomed.get(), expected.c_str(), at::RemoteError);
        CHECK(doomed.info()->status == at::TaskStatus::failed);
        std::vector<at::Task<int>> next;
        for (int i = 0; i < 1000; ++i) next.push_back(at::background_task(square)(i));
        const auto results = at::wait_completed(next, 30s);
        for (int i = 0; i < 1000; ++i) CHECK(results[static_cast<std::size_t>(i)] == i * i);
    }
}

TEST_CASE("mp: a run timeout kills the worker and fails the task with TimeoutError" * doctest::timeout(30)) {
    auto t = at::background_task(blocker, {.timeout = 50ms})('t');
    CHECK(started.receive() == 't');
    CHECK_THROWS_AS((void)t.get(), at::TimeoutError);
    CHECK(at::background_task(square)(3).get() == 9);
}

TEST_CASE("mp: canceling a running process task kills its worker" * doctest::timeout(30)) {
    auto t = at::background_task(blocker)('c');
    CHECK(started.receive() == 'c');
    CHECK(t.status() == at::TaskStatus::started);
    CHECK(t.cancel());
    CHECK_THROWS_AS((void)t.get(), at::CanceledError);
    CHECK(t.status() == at::TaskStatus::canceled);
    CHECK(at::background_task(square)(4).get() == 16);
}

TEST_CASE("mp: progress reported inside a worker reaches the task's record" * doctest::timeout(30)) {
    auto t = at::background_task(progressing)(5);
    (void)started.receive();
    CHECK(t.info()->progress == doctest::Approx(0.5));
    release.send();
    CHECK(t.get() == 5);
    CHECK(t.info()->progress == 1.0);
}

TEST_CASE("mp: priorities and FIFO on the process pool, critical at the head of the line" *
          doctest::timeout(30)) {
    at::task_supervisor.set_mp_pool({.pool_size = 1});
    auto first = at::background_task(blocker, at::Priority::low)('b');
    CHECK(started.receive() == 'b');
    std::vector<at::Task<void>> tasks;
    const std::vector<std::pair<char, at::Priority>> puts = {
        {'l', at::Priority::low}, {'n', at::Priority::normal}, {'h', at::Priority::high},
        {'c', at::Priority::critical}, {'m', at::Priority::normal}, {'k', at::Priority::critical},
    };
    for (const auto& [label, p] : puts) tasks.push_back(at::background_task(labeled, p)(label));
    CHECK(at::task_supervisor.get_info().mp_pool.queued == std::array<std::size_t, 4>{2, 1, 2, 1});
    release.send();
    CHECK(first.get() == 'x');
    at::wait_completed(tasks, 20s);
    CHECK(order.receive(6) == "ckhnml");
}

TEST_CASE("mp: reserves let a high process task in while low ones wait" * doctest::timeout(30)) {
    at::task_supervisor.set_mp_pool({.pool_size = 1, .reserve_high = 1});
    auto low = at::background_task(blocker, at::Priority::low)('L');
    CHECK(started.receive() == 'L');
    auto waiting_low = at::background_task(square, at::Priority::low)(2);
    auto high = at::background_task(square, at::Priority::high)(3);
    CHECK(high.get() == 9);  // on the reserve worker, while the low blocker still runs
    CHECK(waiting_low.status() == at::TaskStatus::queued);
    release.send();
    CHECK(low.get() == 'x');
    CHECK(waiting_low.get() == 4);
}

TEST_CASE("mp: a value larger than the slot crosses through a segment made for the call" * doctest::timeout(30)) {
    const std::string big(100 * 1024, 'z');  // the slots here hold 64 KiB
    CHECK(at::background_task(echo)(big).get() == big);
    CHECK(at::background_task(square)(5).get() == 25);
}

TEST_CASE("mp: a worker whose executor is a process task hands each result to its handler" *
          doctest::timeout(30)) {
    const auto process_runs = [] {
        std::size_t n = 0;
        for (const auto& t : at::task_supervisor.get_tasks(at::TaskType::mp))
            n += t.name == "square" && t.priority == at::Priority::high ? 1 : 0;
        return n;
    };
    const std::size_t before = process_runs();
    std::vector<int> results;
    std::latch three{3};
    auto worker = at::background_worker(
        square, {.name = "squarer", .priority = at::Priority::high},
        [&](int r) {
            results.push_back(r);
            three.count_down();
            return results.size() < 3;  // false stops the worker
        },
        9);
    worker.start();
    three.wait();
    worker.stop();
    CHECK(results == std::vector<int>{81, 81, 81});
    CHECK_FALSE(worker.is_active());
    CHECK(process_runs() - before == 3);  // each run put one process task
}

namespace {
// co_await from a coroutine of the test's own: where it went on after the task ended.
test_support::Eager note_ending_thread(const at::Task<char>& t, std::thread::id& on, std::latch& done) {
    (void)co_await t;
    on = test_support::current_thread();
    done.count_down();
}
}  // namespace

TEST_CASE("mp: a thread that waits for a process task its put started ends it itself" * doctest::timeout(30)) {
    CHECK(at::background_task(square)(2).get() == 4);  // a worker waits idle
    // The put sends the call at once; get() takes the answer and ends the
    // task on the waiting thread, which resumes what awaits it there. The
    // answer cannot come before release.send(), which waits until the
    // thread in get() sleeps (it claimed the answer and waits for it);
    // should the answer still win (the thread slept for another reason),
    // the lane's collector ends the task instead, so one of five must do.
    int ended_here = 0;
    for (int i = 0; i < 5; ++i) {
        auto t = at::background_task(blocker)('p');
        CHECK(started.receive() == 'p');
        std::thread::id on;
        std::latch done(1);
        note_ending_thread(t, on, done);
        std::jthread releaser([tid = ::gettid()] {
            test_support::until_blocked(tid);
            release.send();
        });
        CHECK(t.get() == 'x');
        done.wait();
        if (on == test_support::current_thread()) ++ended_here;
        CHECK(t.info()->status == at::TaskStatus::completed);
    }
    CHECK(ended_here > 0);
}

TEST_CASE("mp: a call a put started ends with nobody waiting for it" * doctest::timeout(30)) {
    CHECK(at::background_task(square)(2).get() == 4);  // a worker waits idle
    auto t = at::background_task(square)(7);
    CHECK(at::task_supervisor.wait_idle(20s));  // no Task::wait(): the lane's collector ends it
    CHECK(t.ready());
    CHECK(t.info()->status == at::TaskStatus::completed);
    CHECK(t.get() == 49);
}

TEST_CASE("mp: four threads put and wait for 500 process tasks each" * doctest::timeout(60)) {
    std::vector<std::jthread> threads;
    std::vector<int> wrong(4, 0);
    for (int k = 0; k < 4; ++k)
        threads.emplace_back([k, &wrong] {
            for (int i = 0; i < 500; ++i) {
                auto a = at::background_task(square)(i);
                auto b = at::background_task(square)(i + 1);
                if (b.get() != (i + 1) * (i + 1) || a.get() != i * i) ++wrong[static_cast<std::size_t>(k)];
            }
        });
    threads.clear();
    CHECK(wrong == std::vector<int>(4, 0));
    CHECK(at::task_supervisor.wait_idle(20s));
}

TEST_CASE("mp: a put whose idle worker was killed still gets its result" * doctest::timeout(30)) {
    const int pid = at::background_task(whoami)().get();
    REQUIRE(::kill(pid, SIGKILL) == 0);
    CHECK(at::background_task(square)(9).get() == 81);
    CHECK(at::background_task(whoami)().get() != pid);
}

TEST_CASE("mp: calls longer than the idle_timeout, a put at a time, keep their worker" * doctest::timeout(30)) {
    // The puts send the calls; the lane's thread sleeps through them, and
    // must not retire, and end the worker with it, in a pause between two.
    // The pauses are the program's own idle time, shorter than the timeout.
    at::task_supervisor.set_mp_pool({.pool_size = 1, .idle_timeout = 100ms});
    // The second waits for the worker: the lane's thread carries it, then
    // sleeps with the new idle_timeout.
    auto first = at::background_task(slow_whoami)();
    auto second = at::background_task(whoami)();
    const int pid = first.get();
    REQUIRE(second.get() == pid);
    for (int i = 0; i < 8; ++i) {
        CHECK(at::background_task(slow_whoami)().get() == pid);
        std::this_thread::sleep_for(60ms);  // the program's pause (the behaviour under test)
    }
}

// Restricts every thread of this process, and `worker`, to the CPUs in `set`.
void pin(const cpu_set_t& set, pid_t worker) {
    for (const auto& t : std::filesystem::directory_iterator("/proc/self/task"))
        (void)::sched_setaffinity(std::stoi(t.path().filename().string()), sizeof set, &set);
    REQUIRE(::sched_setaffinity(worker, sizeof set, &set) == 0);
}

TEST_CASE("mp: on one CPU, answers that come before the put returns end their tasks" * doctest::timeout(60)) {
    // With the worker on the putting thread's CPU, the worker often
    // answers while the put is still sending: the putting thread ends the
    // task itself then (the collector could not yet read the call).
    cpu_set_t all;
    REQUIRE(::sched_getaffinity(0, sizeof all, &all) == 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    const int pid = at::background_task(whoami)().get();  // the one worker (pool_size 1), idle
    pin(one, pid);
    int wrong = 0;
    for (int i = 0; i < 300; ++i) {
        auto t = at::background_task(square)(i);
        if (i % 2 == 0) CHECK(at::task_supervisor.wait_idle(20s));  // nobody waits for it
        if (t.get() != i * i || t.info()->status != at::TaskStatus::completed) ++wrong;
    }
    pin(all, pid);
    CHECK(wrong == 0);
    CHECK(at::background_task(whoami)().get() == pid);
}

TEST_CASE("mp: stop() with cancel ends a process task a thread is waiting for" * doctest::timeout(30)) {
    CHECK(at::background_task(square)(2).get() == 4);  // a worker waits idle
    auto t = at::background_task(blocker)('s');
    CHECK(started.receive() == 's');
    std::latch waiting(1);
    std::jthread waiter([&] {
        waiting.count_down();
        CHECK_THROWS_AS((void)t.get(), at::CanceledError);
    });
    waiting.wait();
    CHECK(at::task_supervisor.stop({.wait = true, .cancel_tasks = true}));
    waiter.join();
    CHECK(t.status() == at::TaskStatus::canceled);
    at::task_supervisor.start();
    CHECK(at::background_task(square)(5).get() == 25);
}

TEST_CASE("mp: wait_idle waits for running process tasks" * doctest::timeout(30)) {
    at::task_supervisor.set_mp_pool({.pool_size = 2});
    auto t = at::background_task(blocker)('w');
    CHECK(started.receive() == 'w');
    CHECK_FALSE(at::task_supervisor.wait_idle(20ms));
    release.send();
    CHECK(at::task_supervisor.wait_idle(20s));
    CHECK(t.ready());
    CHECK(t.get() == 'x');
}

namespace {
// The children of process `pid`, from /proc (workers are the zygote's).
std::vector<std::string> children(const std::string& pid) {
    std::vector<std::string> out;
    std::ifstream in("/proc/" + pid + "/task/" + pid + "/children");
    for (std::string child; in >> child;) out.push_back(child);
    return out;
}
std::vector<std::string> my_children() { return children(std::to_string(::getpid())); }
}  // namespace

TEST_CASE("mp: stop() ends and reaps every worker, then restarts from the same zygote" * doctest::timeout(30)) {
    const auto mine = my_children();
    REQUIRE(mine.size() == 1);  // the zygote; the workers are its children
    const std::string zygote = mine.front();
    CHECK_FALSE(children(zygote).empty());
    CHECK(at::task_supervisor.stop());
    CHECK(children(zygote).empty());
    CHECK(my_children() == mine);  // the same zygote, idle
    at::task_supervisor.start();
    CHECK(at::background_task(square)(6).get() == 36);
    CHECK(my_children() == mine);
}

TEST_CASE("mp: stop() then at::shutdown() leave no child process" * doctest::timeout(30)) {
    CHECK(at::task_supervisor.stop());
    at::shutdown();
    CHECK_FALSE(at::initialized());
    CHECK(my_children().empty());
    errno = 0;
    CHECK(::waitpid(-1, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
    CHECK_THROWS_WITH_AS((void)at::background_task(square)(1), "task supervisor is stopped; call start() before putting tasks",
                         at::Error);
}

int main(int argc, char** argv) {
    test_support::open_pipes();
    at::init({.max_workers = 8, .slot_size = 64 * 1024});
    doctest::Context context(argc, argv);
    return context.run();
}
