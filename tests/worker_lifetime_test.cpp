// Worker processes over their lifetime: replaced after max_tasks_per_worker
// tasks or once their RSS passes max_worker_memory (real forks, real memory
// growth), never in the middle of a call; initializers in each worker
// process (MpInit) and in each pool thread (thread_initializer).
//
// Own main: at::init() must fork the zygote before anything starts a thread,
// and the MpInits must be registered before it.

#include <doctest/doctest.h>

#include <unistd.h>

#include <fstream>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <atasker/atasker.hpp>

#include "pipe_signal.hpp"
#include "test_support.hpp"

namespace at = atasker;
using test_support::PipeSignal;

namespace {

PipeSignal started;  // worker -> test: the long call runs
PipeSignal release;  // test -> worker: let it end

constexpr std::uint64_t mib = 1 << 20;

std::uint64_t resident_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "re");
    unsigned long long size = 0;
    unsigned long long resident = 0;
    if (f == nullptr || std::fscanf(f, "%llu %llu", &size, &resident) != 2) throw std::runtime_error("no statm");
    std::fclose(f);
    return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// Keeps `bytes` more, every page touched: the worker's RSS grows by that much.
void leak(std::size_t bytes) {
    static std::vector<std::vector<char>> kept;
    kept.emplace_back(bytes, 'x');
}

const at::MpTask whoami{"whoami", [] { return static_cast<int>(::getpid()); }};
const at::MpTask pid_of_item{"pid_of_item", [](int) { return static_cast<int>(::getpid()); }};
// One call: 10 MB kept; returns (pid, RSS after it, 2x).
const at::MpTask leaky{"leaky", [](int x) {
                           leak(10 * mib);
                           return std::tuple<int, std::uint64_t, int>{static_cast<int>(::getpid()), resident_bytes(),
                                                                     2 * x};
                       }};
// Passes the limit at once, then waits for the test: must not be killed.
const at::MpTask long_over_limit{"long_over_limit", [] {
                                     leak(80 * mib);
                                     started.send();
                                     (void)release.receive();
                                     return static_cast<int>(::getpid());
                                 }};

int initialized_pid = 0;  // set by the initializer in each worker
const at::MpInit remember_pid{"remember_pid", [] { initialized_pid = static_cast<int>(::getpid()); }};
const at::MpInit no_database{"no_database", [] { throw std::runtime_error("cannot reach the database"); }};
// (pid, what the initializer left)
const at::MpTask init_state{"init_state", [] { return std::pair<int, int>{static_cast<int>(::getpid()), initialized_pid}; }};

// Appends its worker's pid to the file at `path`; throws until the file holds
// `failures` + 1 of them. Returns the pids, in the order the attempts ran.
std::vector<int> note_pid_then_fail(const std::string& path, int failures) {
    { std::ofstream(path, std::ios::app) << ::getpid() << '\n'; }
    std::vector<int> pids;
    std::ifstream in(path);
    for (int pid = 0; in >> pid;) pids.push_back(pid);
    if (pids.size() <= static_cast<std::size_t>(failures)) throw std::runtime_error("not yet");
    return pids;
}
const at::MpTask fail_then_list{"fail_then_list", &note_pid_then_fail};

}  // namespace

TEST_CASE("recycle: a retried task's worker is replaced too; with max_tasks_per_worker 1 each attempt has its own" *
          doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.set_mp_pool({.pool_size = 1, .max_tasks_per_worker = 1});
    sup.start();
    const std::string path = "/tmp/atasker-recycle-retry-" + std::to_string(::getpid());
    std::remove(path.c_str());
    auto t = at::background_task(fail_then_list, {.supervisor = &sup, .retries = 2})(path, 2);
    const std::vector<int> pids = t.get();
    std::remove(path.c_str());
    CHECK(t.info()->attempts == 3);
    REQUIRE(pids.size() == 3);
    const int next = at::background_task(whoami, {.supervisor = &sup})().get();
    CHECK(std::set<int>{pids[0], pids[1], pids[2], next}.size() == 4);
    sup.stop();
}

TEST_CASE("recycle: with max_tasks_per_worker N and one worker, 3N tasks run in exactly 3 processes, N each" *
          doctest::timeout(60)) {
    constexpr int n = 7;
    at::TaskSupervisor sup;
    sup.set_mp_pool({.pool_size = 1, .max_tasks_per_worker = n});
    sup.start();
    std::map<int, int> per_pid;
    for (int i = 0; i < 3 * n; ++i) ++per_pid[at::background_task(whoami, {.supervisor = &sup})().get()];
    CHECK(per_pid.size() == 3);
    for (const auto& [pid, count] : per_pid) CHECK(count == n);
    CHECK(per_pid.count(static_cast<int>(::getpid())) == 0);
    sup.stop();
}

// The timeout only catches a hang: 1,000 workers take ~35 s in a release
// build, ~115 s alone under ThreadSanitizer, and 244 s beside another test on
// 2 vCPUs.
TEST_CASE("recycle: a task leaking 10 MB per call under a 64 MB limit runs 1,000 times with every worker bounded" *
          doctest::timeout(600)) {
    constexpr std::uint64_t limit = 64 * mib;
    at::TaskSupervisor sup;
    sup.set_mp_pool({.pool_size = 2, .max_worker_memory = limit});
    sup.start();
    test_support::LogCapture log(at::LogLevel::debug);
    std::vector<at::Task<std::tuple<int, std::uint64_t, int>>> calls;
    constexpr int count = 1000;
    calls.reserve(count);
    for (int i = 0; i < count; ++i) calls.push_back(at::background_task(leaky, {.supervisor = &sup})(i));
    std::set<int> pids;
    std::uint64_t highest = 0;
    for (int i = 0; i < count; ++i) {
        const auto [pid, rss, twice] = calls[static_cast<std::size_t>(i)].get();
        REQUIRE(twice == 2 * i);
        pids.insert(pid);
        highest = std::max(highest, rss);
        // Under the limit before the call, plus the call's 10 MB (and the
        // slack of a page table and malloc's headers).
        REQUIRE(rss < limit + 10 * mib + 4 * mib);
    }
    sup.stop();
    MESSAGE("distinct workers: " << pids.size() << ", highest RSS: " << highest / mib << " MiB");
    CHECK(pids.size() >= count / 7);  // at most 6 calls of 10 MB fit under 64 MB
    const auto lines = log.at(at::LogLevel::debug, "process pool: worker process ");
    REQUIRE(!lines.empty());
    CHECK(lines.front().find("passed max_worker_memory 64 MiB") != std::string::npos);
}

TEST_CASE("recycle: a long call on a worker past its limit is not killed; it completes, then the worker is replaced" *
          doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.set_mp_pool({.pool_size = 1, .max_worker_memory = 64 * mib});
    sup.start();
    auto t = at::background_task(long_over_limit, {.supervisor = &sup})();
    (void)started.receive();  // it is past the limit, and runs
    release.send();
    const int pid = t.get();
    CHECK(t.info()->status == at::TaskStatus::completed);
    CHECK(at::background_task(whoami, {.supervisor = &sup})().get() != pid);
    sup.stop();
}

TEST_CASE("recycle: at::map counts each item of a chunk and replaces the worker after the chunk's request" *
          doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.set_mp_pool({.pool_size = 1, .max_tasks_per_worker = 10});
    sup.start();
    std::vector<int> in(100);
    const std::vector<int> pids = at::map(pid_of_item, in, {.chunksize = 25, .supervisor = &sup});
    std::map<int, int> per_pid;
    for (int p : pids) ++per_pid[p];
    CHECK(per_pid.size() == 4);
    for (const auto& [pid, count] : per_pid) CHECK(count == 25);
    sup.stop();
}

TEST_CASE("initializer: each worker process runs it before its first task, and each replacement again" *
          doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.set_mp_pool({.pool_size = 1, .max_tasks_per_worker = 4, .initializer = remember_pid});
    sup.start();
    std::set<int> pids;
    for (int i = 0; i < 12; ++i) {
        const auto [pid, seen] = at::background_task(init_state, {.supervisor = &sup})().get();
        CHECK(seen == pid);
        pids.insert(pid);
    }
    CHECK(pids.size() == 3);
    sup.stop();
}

TEST_CASE("initializer: one that throws fails the worker's tasks with a RemoteError naming it, logged once" *
          doctest::timeout(60)) {
    test_support::LogCapture log(at::LogLevel::error);
    at::TaskSupervisor sup;
    sup.set_mp_pool({.pool_size = 1, .initializer = no_database});
    sup.start();
    for (int i = 0; i < 3; ++i) {
        // Held past the handler: the task shares the exception object, and
        // the lane thread may drop the last reference to it after the handler
        // ran. Through the task's own count, ThreadSanitizer sees that order
        // (libstdc++'s exception_ptr count, uninstrumented, it does not).
        auto t = at::background_task(whoami, {.supervisor = &sup})();
        try {
            (void)t.get();
            FAIL("the task ran on a worker whose initializer failed");
        } catch (const at::RemoteError& e) {
            CHECK(e.type_name() == "std::runtime_error");
            CHECK(std::string(e.what()) ==
                  "the worker process initializer \"no_database\" failed, so this worker runs no task: cannot reach "
                  "the database");
        }
    }
    sup.stop();
    const auto lines = log.at(at::LogLevel::error);
    REQUIRE(lines.size() == 1);  // one worker: no fork loop, one line
    CHECK(lines[0].find("the initializer \"no_database\" of worker process") != std::string::npos);
    CHECK(lines[0].find("threw std::runtime_error: cannot reach the database") != std::string::npos);
}

TEST_CASE("initializer: one registered after at::init() is refused with a clear error" * doctest::timeout(30)) {
    static const at::MpInit too_late{"too_late", [] {}};
    at::TaskSupervisor sup;
    CHECK_THROWS_WITH_AS(sup.set_mp_pool({.pool_size = 1, .initializer = too_late}),
                         doctest::Contains("the initializer \"too_late\" was registered after at::init()"), at::Error);
}

TEST_CASE("pool options: nonsense lifetimes and initializers in the wrong pool are refused" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    CHECK_THROWS_WITH_AS(sup.set_mp_pool({.pool_size = 1, .max_worker_memory = 4096}),
                         doctest::Contains("max_worker_memory (4096 bytes) is not above"), at::Error);
    CHECK_THROWS_WITH_AS(sup.set_mp_pool({.pool_size = 1, .thread_initializer = [] {}}),
                         doctest::Contains("thread_initializer runs in thread pool threads"), at::Error);
    CHECK_THROWS_WITH_AS(sup.set_thread_pool({.pool_size = 1, .max_tasks_per_worker = 3}),
                         doctest::Contains("apply to worker processes"), at::Error);
    CHECK_THROWS_WITH_AS(sup.set_thread_pool({.pool_size = 1, .initializer = remember_pid}),
                         doctest::Contains("apply to worker processes"), at::Error);
}

namespace {
thread_local bool thread_ready = false;
}

TEST_CASE("thread initializer: runs once in each pool thread, before its first task" * doctest::timeout(60)) {
    std::mutex m;
    std::multiset<std::thread::id> initialized;
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 3, .min_size = 3, .thread_initializer = [&] {
                             thread_ready = true;
                             std::lock_guard lock(m);
                             initialized.insert(std::this_thread::get_id());
                         }});
    sup.start();
    std::latch all_three(3);  // three tasks at once: each pool thread takes one
    std::vector<at::Task<std::pair<std::thread::id, bool>>> tasks;
    for (int i = 0; i < 3; ++i)
        tasks.push_back(at::background_task([&] {
            all_three.arrive_and_wait();
            return std::pair{std::this_thread::get_id(), thread_ready};
        }, {.supervisor = &sup})());
    for (int i = 0; i < 30; ++i)
        tasks.push_back(at::background_task([] { return std::pair{std::this_thread::get_id(), thread_ready}; },
                                            {.supervisor = &sup})());
    std::set<std::thread::id> ran_on;
    for (auto& t : tasks) {
        const auto [id, ready] = t.get();
        CHECK(ready);
        ran_on.insert(id);
    }
    sup.stop();
    const std::set<std::thread::id> distinct(initialized.begin(), initialized.end());
    CHECK(initialized.size() == distinct.size());  // once per thread
    CHECK(distinct.size() == 3);                   // every thread started
    for (const auto& id : ran_on) CHECK(distinct.count(id) == 1);
}

TEST_CASE("thread initializer: one that throws is logged, and the thread's tasks fail with an Error naming it" *
          doctest::timeout(60)) {
    test_support::LogCapture log(at::LogLevel::error);
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1, .min_size = 1,
                         .thread_initializer = [] { throw std::runtime_error("no seed"); }});
    sup.start();
    for (int i = 0; i < 2; ++i) {
        auto t = at::background_task([] { return 1; }, {.supervisor = &sup})();
        CHECK_THROWS_WITH_AS((void)t.get(), doctest::Contains("thread_initializer failed"), at::Error);
        CHECK(t.info()->status == at::TaskStatus::failed);
    }
    sup.stop();
    const auto lines = log.at(at::LogLevel::error);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("no seed") != std::string::npos);
}

int main(int argc, char** argv) {
    started.open();
    release.open();
    at::init({.max_workers = 4});
    doctest::Context context(argc, argv);
    return context.run();
}
