#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <algorithm>
#include <fstream>
#include <future>
#include <latch>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::Gate;
using test_support::occupy;

TEST_CASE("supervisor: stop with cancel_tasks cancels the queue and resolves every handle" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    std::latch started{1};
    auto running = at::background_task(
        [&](std::stop_token token) {
            started.count_down();
            test_support::wait_for_stop(token);
            return 10;
        },
        {.supervisor = &sup})();
    started.wait();
    std::vector<at::Task<int>> queued;
    for (int i = 0; i < 3; ++i) queued.push_back(at::background_task([i] { return i; }, {.supervisor = &sup})());
    auto delayed = at::background_task([] { return 0; }, {.delay = 1h, .supervisor = &sup})();
    CHECK(sup.stop({.wait = true, .cancel_tasks = true}));
    CHECK_FALSE(sup.is_active());
    CHECK(running.get() == 10);  // it saw the stop request and returned
    for (auto& t : queued) CHECK(t.status() == at::TaskStatus::canceled);
    CHECK(delayed.status() == at::TaskStatus::canceled);
    const auto info = sup.get_info();
    CHECK(info.thread_pool.workers == 0);
    CHECK(info.delayed == 0);
}

TEST_CASE("supervisor: stop without cancel lets queued tasks run to the end" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    Gate gate;
    auto blocker = occupy(sup, gate);
    std::vector<at::Task<int>> queued;
    for (int i = 0; i < 3; ++i) queued.push_back(at::background_task([i] { return i; }, {.supervisor = &sup})());
    auto stopping = std::async(std::launch::async, [&] { return sup.stop(); });
    sup.block();  // returns once stop() was called
    CHECK_FALSE(sup.is_active());
    gate.open();
    CHECK(stopping.get());
    for (int i = 0; i < 3; ++i) CHECK(queued[static_cast<std::size_t>(i)].get() == i);
    CHECK(sup.get_info().thread_pool.workers == 0);
}

TEST_CASE("supervisor: stop with a timeout gives up, cancels the queue and reports false" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    Gate gate;
    auto blocker = occupy(sup, gate);
    auto queued = at::background_task([] { return 1; }, {.supervisor = &sup})();
    CHECK_FALSE(sup.stop({.wait = true, .timeout = 20ms}));
    CHECK(queued.status() == at::TaskStatus::canceled);
    gate.open();
    blocker.get();
    CHECK(sup.stop());  // joins the thread the timeout left behind
    CHECK(sup.get_info().thread_pool.workers == 0);
}

TEST_CASE("supervisor: a stopped supervisor starts again" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    CHECK(at::background_task([] { return 1; }, {.supervisor = &sup})().get() == 1);
    sup.stop();
    sup.start();
    CHECK(at::background_task([] { return 2; }, {.supervisor = &sup})().get() == 2);
    sup.stop();
}

TEST_CASE("supervisor: min_size threads exist from start" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 4, .min_size = 3});
    sup.start();
    const auto info = sup.get_info();
    CHECK(info.thread_pool.workers == 3);
    sup.stop();
}

TEST_CASE("supervisor: threads above min_size retire after idle_timeout" * doctest::timeout(30)) {
    std::latch retired{2};
    at::set_debug(true);
    at::set_log_sink([&](at::LogLevel, std::string_view line) {
        if (line.starts_with("thread pool: a thread retired after 20ms")) retired.count_down();
    });
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 3, .min_size = 1, .idle_timeout = 20ms});
    sup.start();
    Gate gate;
    std::latch all_running{3};
    std::vector<at::Task<void>> tasks;
    for (int i = 0; i < 3; ++i)
        tasks.push_back(at::background_task(
            [&] {
                all_running.count_down();
                gate.wait();
            },
            {.supervisor = &sup})());
    all_running.wait();
    CHECK(sup.get_info().thread_pool.workers == 3);
    gate.open();
    at::wait_completed(tasks, 10s);
    retired.wait();  // two of the three retire; min_size keeps one
    at::set_log_sink({});
    at::set_debug(false);
    CHECK(sup.get_info().thread_pool.workers == 1);
    sup.stop();
}

namespace {
/// Mappings in this process: an exited thread that nobody joined keeps its
/// stack and guard page mapped.
std::size_t mapping_count() {
    std::ifstream maps("/proc/self/maps");
    std::size_t lines = 0;
    for (std::string line; std::getline(maps, line);) ++lines;
    return lines;
}
}  // namespace

TEST_CASE("supervisor: a pool that grows and shrinks again and again keeps no exited threads" *
          doctest::timeout(120)) {
    // Three critical tasks at once on a saturated pool of one: the two
    // standby threads take two, a third thread starts for the last, and one
    // thread leaves once the tasks end (two stay as standbys).
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    Gate gate;
    auto blocker = occupy(sup, gate);
    const auto burst = [&] {
        std::latch all_running{3};
        std::vector<at::Task<void>> critical;
        for (int i = 0; i < 3; ++i)
            critical.push_back(at::background_task([&all_running] { all_running.arrive_and_wait(); },
                                                   {.priority = at::Priority::critical, .supervisor = &sup})());
        at::wait_completed(critical, 10s);
    };
    burst();
    const std::size_t before = mapping_count();
    constexpr int bursts = 300;
    for (int i = 0; i < bursts; ++i) burst();
    // Unjoined, the ~300 threads that left would keep ~600 mappings.
    CHECK(mapping_count() < before + 100);
    gate.open();
    sup.stop();
}

TEST_CASE("supervisor: wait-time thresholds fire while the task still waits" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    std::promise<at::TaskInfo> warned;
    std::promise<at::TaskInfo> critical;
    // Only the waiting task's: the blocker's may fire too where its thread
    // takes longer than 5 ms to start (a sanitizer build).
    sup.set_wait_timeouts({.warning = 5ms,
                           .critical = 10ms,
                           .on_warning =
                               [&](const at::TaskInfo& i) {
                                   if (i.name == "patient") warned.set_value(i);
                               },
                           .on_critical =
                               [&](const at::TaskInfo& i) {
                                   if (i.name == "patient") critical.set_value(i);
                               }});
    sup.start();
    Gate gate;
    auto blocker = occupy(sup, gate);
    auto waiting = at::background_task([] {}, {.name = "patient", .supervisor = &sup})();
    const auto w = warned.get_future().get();
    const auto c = critical.get_future().get();
    CHECK(w.id == waiting.id());
    CHECK(w.status == at::TaskStatus::queued);
    CHECK(c.name == "patient");
    CHECK(waiting.status() == at::TaskStatus::queued);
    gate.open();
    waiting.get();
    sup.stop();
}

TEST_CASE("supervisor: 8 threads putting 100k tasks of random priorities lose none" * doctest::timeout(120)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2, .reserve_normal = 1, .reserve_high = 1});
    sup.set_retention({.max_finished = 0});
    sup.start();
    constexpr int producers = 8;
    constexpr int per_producer = 12500;
    std::atomic<long> sum{0};
    std::vector<std::thread> threads;
    std::vector<std::vector<at::Task<void>>> handles(producers);
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            std::mt19937 rng(static_cast<unsigned>(p));
            const at::Priority prios[] = {at::Priority::critical, at::Priority::high, at::Priority::normal,
                                          at::Priority::low};
            for (int i = 0; i < per_producer; ++i) {
                const auto prio = prios[rng() % 4];
                handles[static_cast<std::size_t>(p)].push_back(
                    at::background_task([&sum, i] { sum += i; }, {.priority = prio, .supervisor = &sup})());
            }
        });
    }
    for (auto& t : threads) t.join();
    for (auto& h : handles) at::wait_completed(h, 100s);
    const long expected = long{producers} * (long{per_producer} * (per_producer - 1) / 2);
    CHECK(sum.load() == expected);
    const auto info = sup.get_info();
    CHECK(info.thread_pool.queued == std::array<std::size_t, 4>{});
    CHECK(info.thread_pool.running == std::array<std::size_t, 4>{});
    sup.stop();
}

TEST_CASE("supervisor: a put's id has its record when the put returns, however many threads put" *
          doctest::timeout(120)) {
    // Puts that find the mutex busy go to the inbox with a reserved id; the
    // record must be there for any reader all the same.
    constexpr int producers = 4;
    constexpr int per_producer = 20000;
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2});
    // Keep every finished record: a producer preempted between its put and
    // its look would otherwise find its record rightly forgotten.
    sup.set_retention({.max_finished = producers * per_producer});
    sup.start();
    std::atomic<int> missing{0};
    std::atomic<int> ran{0};
    std::vector<std::vector<at::Task<void>>> handles(producers);
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&, p] {
            for (int i = 0; i < per_producer; ++i) {
                auto task = at::background_task([&ran] { ++ran; }, {.supervisor = &sup})();
                if (!sup.get_task_info(task.id())) ++missing;
                handles[static_cast<std::size_t>(p)].push_back(std::move(task));
            }
        });
    for (auto& t : threads) t.join();
    for (auto& h : handles) at::wait_completed(h, 100s);
    CHECK(missing.load() == 0);
    CHECK(ran.load() == producers * per_producer);
    std::set<at::TaskId> ids;
    for (const auto& h : handles)
        for (const auto& t : h) ids.insert(t.id());
    CHECK(ids.size() == std::size_t{producers * per_producer});
    sup.stop();
}

TEST_CASE("supervisor: behind a saturated pool, puts keep their order, priority and time queued" *
          doctest::timeout(30)) {
    // The pool's one thread is busy: these puts wait in the inbox until a
    // holder of the mutex (here get_info) queues them.
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    Gate gate;
    auto blocker = occupy(sup, gate);
    test_support::Trace trace;
    std::vector<at::Task<void>> tasks;
    const auto before = std::chrono::system_clock::now();
    for (int i = 0; i < 100; ++i)
        tasks.push_back(at::background_task([&trace, i] { trace.add(std::to_string(i)); }, {.supervisor = &sup})());
    tasks.push_back(at::background_task([&trace] { trace.add("high"); },
                                        {.priority = at::Priority::high, .supervisor = &sup})());
    const auto after = std::chrono::system_clock::now();
    const auto queued = sup.get_info().thread_pool.queued;
    CHECK(queued[at::priority_rank(at::Priority::normal)] == 100);
    CHECK(queued[at::priority_rank(at::Priority::high)] == 1);
    for (const auto& t : tasks) {
        const auto info = t.info();
        REQUIRE(info);
        CHECK(info->status == at::TaskStatus::queued);
        // When it was put, not when it was queued from the inbox.
        CHECK(info->time_queued >= before - test_support::record_clock_tolerance);
        CHECK(info->time_queued <= after + test_support::record_clock_tolerance);
    }
    gate.open();
    at::wait_completed(tasks, 10s);
    std::vector<std::string> expected{"high"};
    for (int i = 0; i < 100; ++i) expected.push_back(std::to_string(i));
    CHECK(trace.labels() == expected);
    sup.stop();
}

TEST_CASE("supervisor: a put racing stop either throws or resolves its handle" * doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2});
    sup.start();
    constexpr int producers = 4;
    std::latch putting{producers};
    std::atomic<int> ran{0};
    std::vector<std::vector<at::Task<void>>> handles(producers);
    std::vector<std::string> refusals(producers);
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&, p] {
            for (int i = 0;; ++i) {
                try {
                    handles[static_cast<std::size_t>(p)].push_back(
                        at::background_task([&ran] { ++ran; }, {.supervisor = &sup})());
                } catch (const at::Error& e) {
                    refusals[static_cast<std::size_t>(p)] = e.what();
                    return;
                }
                if (i == 1000) putting.count_down();
            }
        });
    putting.wait();
    CHECK(sup.stop({.wait = true, .cancel_tasks = false}));
    for (auto& t : threads) t.join();
    int completed = 0;
    int unresolved = 0;
    for (const auto& h : handles)
        for (const auto& t : h) {
            const auto status = t.status();
            completed += status == at::TaskStatus::completed ? 1 : 0;
            unresolved += status == at::TaskStatus::completed || status == at::TaskStatus::canceled ? 0 : 1;
        }
    CHECK(unresolved == 0);
    CHECK(completed == ran.load());
    for (const auto& r : refusals) CHECK(r.find("call start()") != std::string::npos);
}

TEST_CASE("supervisor: records stay bounded after 1M tasks, the newest kept" * doctest::timeout(300)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2});
    sup.set_retention({.max_finished = 1000});
    sup.start();
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer runs this ~70x slower; the 1M run is in CI's other stages.
    constexpr int total = 200'000;
#else
    constexpr int total = 1'000'000;
#endif
    constexpr int batch = 10'000;
    at::Task<int> last;
    at::Task<int> first;
    for (int done = 0; done < total; done += batch) {
        std::vector<at::Task<int>> tasks;
        tasks.reserve(batch);
        for (int i = 0; i < batch; ++i) tasks.push_back(at::background_task([i] { return i; }, {.supervisor = &sup})());
        at::wait_completed(tasks, 60s);
        if (done == 0) first = tasks.front();
        last = tasks.back();
    }
    const auto info = sup.get_info();
    CHECK(info.records == 1000);
    CHECK(sup.get_tasks().size() == 1000);
    CHECK_FALSE(sup.get_task_info(first.id()));      // forgotten
    CHECK(sup.get_task_info(last.id()).has_value());  // kept
    CHECK(first.status() == at::TaskStatus::completed);  // the handle still knows
    sup.stop();
}

TEST_CASE("supervisor: retention 0 forgets at completion and ids are never reused" * doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.set_retention({.max_finished = 0});
    sup.start();
    std::set<at::TaskId> ids;
    for (int i = 0; i < 2000; ++i) {
        auto t = at::background_task([] {}, {.supervisor = &sup})();
        t.get();
        CHECK(t.id() != 0);
        ids.insert(t.id());
    }
    CHECK(ids.size() == 2000);
    CHECK(sup.get_info().records == 0);
    sup.stop();
}

TEST_CASE("supervisor: a reused record carries no name or error from the task before it" * doctest::timeout(30)) {
    // Names and errors live beside the records; a forgotten record's must go
    // with it, whatever task takes its slot next.
    at::TaskSupervisor sup;
    sup.set_retention({.max_finished = 1});
    sup.start();
    auto failed = at::background_task([]() -> int { throw std::runtime_error("boom"); },
                                      {.name = "a task that fails", .supervisor = &sup})();
    CHECK_THROWS_WITH(failed.get(), "boom");
    auto info = sup.get_task_info(failed.id());
    REQUIRE(info);
    CHECK(info->name == "a task that fails");
    CHECK(info->error == "boom");
    CHECK(info->status == at::TaskStatus::failed);

    auto named = at::background_task([] {}, {.name = "b", .supervisor = &sup})();
    named.get();
    CHECK_FALSE(sup.get_task_info(failed.id()));  // forgotten: one finished record is kept
    info = sup.get_task_info(named.id());
    REQUIRE(info);
    CHECK(info->name == "b");
    CHECK(info->error.empty());

    // An unnamed task that fails takes the side storage the first one freed.
    auto unnamed = at::background_task([]() -> int { throw std::runtime_error("second"); }, {.supervisor = &sup})();
    CHECK_THROWS_WITH(unnamed.get(), "second");
    info = sup.get_task_info(unnamed.id());
    REQUIRE(info);
    CHECK(info->name.empty());
    CHECK(info->error == "second");

    auto plain = at::background_task([] {}, {.supervisor = &sup})();
    plain.get();
    info = sup.get_task_info(plain.id());
    REQUIRE(info);
    CHECK(info->name.empty());
    CHECK(info->error.empty());
    CHECK(info->status == at::TaskStatus::completed);
    sup.stop();
}

TEST_CASE("supervisor: records kept for a bounded age") {
    at::TaskSupervisor sup;
    sup.set_retention({.max_finished = 100, .max_age = 1ns});
    sup.start();
    auto t = at::background_task([] { return 1; }, {.supervisor = &sup})();
    t.get();
    CHECK_FALSE(sup.get_task_info(t.id()));  // older than 1 ns by the time we ask
    sup.stop();
}

TEST_CASE("supervisor: get_tasks filters by type and get_info counts records") {
    at::TaskSupervisor sup;
    sup.start();
    auto t = at::background_task([] { return 1; }, {.name = "one", .supervisor = &sup})();
    t.get();
    CHECK(sup.get_tasks(at::TaskType::thread).size() == 1);
    CHECK(sup.get_tasks(at::TaskType::mp).empty());
    CHECK(sup.get_info().records == 1);
    CHECK(sup.get_info().active);
    sup.stop();
    CHECK(fmt::format("{}", sup.get_info()) ==
          "supervisor stopped: threads: 0 workers (0 idle), queued c/h/n/l 0/0/0/0, running c/h/n/l 0/0/0/0; "
          "processes: 0 workers (0 idle), queued c/h/n/l 0/0/0/0, running c/h/n/l 0/0/0/0; 0 delayed, 1 records");
    CHECK(fmt::format("{} {} {} {}", at::Priority::high, at::TaskType::mp, at::TaskStatus::delayed, at::TaskId{7}) ==
          "high mp delayed 7");
}

TEST_CASE("supervisor: call_at runs on the timer thread, cancel_call drops a pending call" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::promise<std::thread::id> ran;
    const auto id = sup.call_at(std::chrono::steady_clock::now() + 1ms, [&] { ran.set_value(std::this_thread::get_id()); });
    CHECK(id != 0);
    CHECK(ran.get_future().get() != std::this_thread::get_id());
    std::atomic<bool> late{false};
    const auto far = sup.call_at(std::chrono::steady_clock::now() + 1h, [&] { late = true; });
    CHECK(sup.cancel_call(far));
    CHECK_FALSE(sup.cancel_call(far));
    CHECK_FALSE(sup.cancel_call(id));  // already ran
    sup.stop();
    CHECK_FALSE(late.load());
    CHECK(sup.call_at(std::chrono::steady_clock::now(), [] {}) == 0);  // stopped: nothing scheduled
}

TEST_CASE("supervisor: what a scheduled call throws is logged with the call's id" * doctest::timeout(30)) {
    test_support::LogCapture log;
    at::TaskSupervisor sup;
    sup.start();
    // One deadline: the timer thread runs them in the order they were scheduled.
    const auto when = std::chrono::steady_clock::now();
    const auto standard = sup.call_at(when, [] { throw std::runtime_error("no route to host"); });
    const auto other = sup.call_at(when, [] { throw 42; });
    std::promise<void> after;
    (void)sup.call_at(when, [&] { after.set_value(); });
    after.get_future().get();
    std::vector<std::string> errors;
    for (const auto& [level, line] : log.lines())
        if (level == at::LogLevel::error) errors.push_back(line);
    CHECK(errors == std::vector<std::string>{fmt::format("scheduled call {} threw: no route to host", standard),
                                             fmt::format("scheduled call {} threw a non-standard exception", other)});
    sup.stop();
}

TEST_CASE("supervisor: stop drops pending scheduled calls uncalled; cancel_call waits for a running one" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::latch entered{1};
    Gate gate;
    std::atomic<bool> finished{false};
    auto held = std::make_shared<int>(0);
    std::weak_ptr<int> running_capture = held;
    const auto running = sup.call_at(std::chrono::steady_clock::now(), [&, held] {
        entered.count_down();
        gate.wait();
        finished = true;
    });
    held.reset();
    entered.wait();
    auto canceled = std::async(std::launch::async, [&] {
        const bool dropped = sup.cancel_call(running);
        return std::pair{dropped, finished.load() && running_capture.expired()};
    });
    gate.open();
    // False: it had started; by then it has ended and its function is gone.
    CHECK(canceled.get() == std::pair{false, true});

    std::atomic<bool> called{false};
    held = std::make_shared<int>(0);
    std::weak_ptr<int> pending_capture = held;
    CHECK(sup.call_at(std::chrono::steady_clock::now() + 1h, [&called, held] { called = true; }) != 0);
    held.reset();
    CHECK_FALSE(pending_capture.expired());
    sup.stop();
    CHECK(pending_capture.expired());
    CHECK_FALSE(called.load());
}

namespace {
// A service that, when stopped, still gets a task run: the pools serve
// until services have stopped.
struct ProbeService final : at::detail::Service {
    ProbeService(at::TaskSupervisor& s, int o, test_support::Trace& t) : sup(&s), order(o), trace(&t) {}
    at::TaskSupervisor* sup;
    int order;
    test_support::Trace* trace;
    void stop_service() noexcept override {
        const int v = at::background_task([] { return 1; }, {.supervisor = sup})().get();
        trace->add(fmt::format("order {} stopped, task returned {}", order, v));
    }
    [[nodiscard]] int stop_order() const noexcept override { return order; }
};
}  // namespace

TEST_CASE("supervisor: services stop in order, before the pools" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    test_support::Trace trace;
    ProbeService aloop(sup, 1, trace);
    ProbeService worker(sup, 0, trace);
    sup.attach_service(&aloop);
    sup.attach_service(&worker);
    sup.stop();
    CHECK(trace.labels() ==
          std::vector<std::string>{"order 0 stopped, task returned 1", "order 1 stopped, task returned 1"});
    sup.detach_service(&aloop);
    sup.detach_service(&worker);
}

TEST_CASE("supervisor: stop() with wait from one of its own tasks is refused, and nothing is lost" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    auto stopper = at::background_task([&sup] { return sup.stop(); }, {.supervisor = &sup})();
    try {
        (void)stopper.get();
        FAIL("stop() from a task returned");
    } catch (const at::Error& e) {
        CHECK(std::string(e.what()) ==
              "stop() waits for every running task, and it was called from one of this supervisor's own tasks (or "
              "a completion callback); pass {.wait = false}, or call stop() from another thread");
    }
    CHECK(sup.is_active());
    CHECK(at::background_task([] { return 5; }, {.supervisor = &sup})().get() == 5);
}

TEST_CASE("supervisor: stop({.wait = false}) from a task stops it; a later stop() waits for that task" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    Gate go;
    Gate finish;
    auto stopper = at::background_task(
        [&sup, &go, &finish] {
            go.wait();  // not before the next task is queued: its put would be refused
            const bool drained = sup.stop({.wait = false});
            finish.wait();
            return drained;
        },
        {.supervisor = &sup})();
    auto queued = at::background_task([] { return 1; }, {.supervisor = &sup})();
    go.open();
    sup.block();  // returns once the task's stop() began
    CHECK_THROWS_AS(at::background_task([] { return 2; }, {.supervisor = &sup})(), at::Error);
    queued.wait();
    CHECK(queued.status() == at::TaskStatus::canceled);
    finish.open();
    CHECK(sup.stop());
    CHECK_FALSE(stopper.get());  // the stopping task itself was still running
    CHECK(sup.get_info().thread_pool.workers == 0);
}

TEST_CASE("supervisor: a completion callback may stop its supervisor without waiting" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::promise<bool> stopped;
    auto task = at::background_task([] { return 3; }, {.supervisor = &sup})
                    .callback([&](const at::Task<int>&) { stopped.set_value(sup.stop({.wait = false})); })();
    CHECK(task.get() == 3);
    (void)stopped.get_future().get();
    CHECK_FALSE(sup.is_active());
    CHECK(sup.stop());
}

TEST_CASE("supervisor: a task handle outlives its supervisor" * doctest::timeout(30)) {
    at::Task<int> done;
    at::Task<int> canceled;
    {
        at::TaskSupervisor sup;
        sup.set_thread_pool({.pool_size = 1});
        sup.start();
        Gate gate;
        auto blocker = test_support::occupy(sup, gate);
        done = at::background_task([] { return 6; }, {.name = "six", .supervisor = &sup})();
        canceled = at::background_task([] { return 7; }, {.supervisor = &sup})();
        CHECK(canceled.cancel());
        CHECK(done.info()->name == "six");
        gate.open();
        CHECK(done.get() == 6);
    }
    CHECK(done.get() == 6);
    CHECK(done.status() == at::TaskStatus::completed);
    CHECK_FALSE(done.error());
    CHECK_FALSE(done.info().has_value());
    CHECK_FALSE(done.cancel());
    CHECK(canceled.status() == at::TaskStatus::canceled);
    CHECK_THROWS_AS(canceled.get(), at::CanceledError);
    // A new supervisor, possibly at the same address, is not the old one.
    at::TaskSupervisor next;
    next.start();
    auto fresh = at::background_task([] { return 1; }, {.supervisor = &next})();
    CHECK(fresh.get() == 1);
    CHECK_FALSE(done.info().has_value());
    CHECK_FALSE(done.cancel());
}

TEST_CASE("supervisor: 100k queued tasks canceled newest first, oldest first and at random; the rest run in order" *
          doctest::timeout(120)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.set_retention({.max_finished = 200'000});
    sup.start();
    Gate gate;
    auto blocker = occupy(sup, gate);
    constexpr int n = 100'000;
    test_support::Trace ran;
    std::vector<at::Task<void>> tasks;
    tasks.reserve(n);
    for (int i = 0; i < n; ++i)
        tasks.push_back(at::background_task([&ran, i] { ran.add(std::to_string(i)); },
                                            {.priority = i % 3 == 0 ? at::Priority::high : at::Priority::low,
                                             .supervisor = &sup})());
    // The newest third newest first (each the tail), the oldest third oldest
    // first (each the head), and every other task of the middle third in a
    // random order (each somewhere inside its queue).
    std::vector<int> to_cancel;
    for (int i = n - 1; i >= 2 * n / 3; --i) to_cancel.push_back(i);
    for (int i = 0; i < n / 3; ++i) to_cancel.push_back(i);
    std::vector<int> middle;
    for (int i = n / 3; i < 2 * n / 3; i += 2) middle.push_back(i);
    std::shuffle(middle.begin(), middle.end(), std::mt19937(7));
    to_cancel.insert(to_cancel.end(), middle.begin(), middle.end());
    std::set<int> canceled;
    for (int i : to_cancel) {
        CHECK(tasks[static_cast<std::size_t>(i)].cancel());
        canceled.insert(i);
    }
    const at::SupervisorInfo info = sup.get_info();
    const auto queued = info.thread_pool.queued;
    CHECK(std::accumulate(queued.begin(), queued.end(), std::size_t{0}) ==
          static_cast<std::size_t>(n) - canceled.size());
    gate.open();
    std::vector<std::string> expected_high, expected_low;
    for (int i = 0; i < n; ++i) {
        auto& t = tasks[static_cast<std::size_t>(i)];
        t.wait();
        if (canceled.contains(i)) {
            CHECK(t.status() == at::TaskStatus::canceled);
            const auto record = t.info();
            REQUIRE(record.has_value());
            CHECK_FALSE(record->time_started.has_value());
        } else {
            CHECK(t.status() == at::TaskStatus::completed);
            (i % 3 == 0 ? expected_high : expected_low).push_back(std::to_string(i));
        }
    }
    // The high tasks left ran first, then the low ones, each in the order put.
    std::vector<std::string> expected = expected_high;
    expected.insert(expected.end(), expected_low.begin(), expected_low.end());
    CHECK(ran.labels() == expected);
    sup.stop();
}

TEST_CASE("supervisor: wait_idle returns once nothing is queued, delayed or running, every callback returned" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1, .max_size = 1});
    sup.start();
    Gate gate;
    auto blocker = occupy(sup, gate);
    std::atomic<int> callbacks{0};
    std::vector<at::Task<int>> queued;
    for (int i = 0; i < 5; ++i)
        queued.push_back(at::background_task([i] { return i; }, {.supervisor = &sup})
                             .callback([&](const at::Task<int>&) { ++callbacks; })());
    auto delayed = at::background_task([] { return 9; }, {.delay = 1ms, .supervisor = &sup})();
    CHECK_FALSE(sup.wait_idle(20ms));  // the blocker holds the only thread
    gate.open();
    CHECK(sup.wait_idle(20s));
    CHECK(callbacks == 5);
    CHECK(blocker.ready());
    CHECK(delayed.ready());
    for (const auto& t : queued) CHECK(t.ready());
    const auto info = sup.get_info();
    CHECK(info.thread_pool.queued == std::array<std::size_t, 4>{});
    CHECK(info.thread_pool.running == std::array<std::size_t, 4>{});
    CHECK(info.delayed == 0);
    sup.stop();
}

TEST_CASE("supervisor: wait_idle counts a completion callback still running after its task's record finished" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate in_callback;
    std::latch callback_entered{1};
    auto t = at::background_task([] { return 1; }, {.supervisor = &sup})
                 .callback([&](const at::Task<int>&) {
                     callback_entered.count_down();
                     in_callback.wait();
                 })();
    callback_entered.wait();
    CHECK(t.info()->status == at::TaskStatus::completed);  // the record finished before the callback
    CHECK_FALSE(sup.wait_idle(20ms));
    in_callback.open();
    CHECK(sup.wait_idle(20s));
    sup.stop();
}

TEST_CASE("supervisor: every task put before wait_idle has run and is ready when it returns" * doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2});
    sup.start();
    constexpr int n = 20000;
    std::atomic<int> ran{0};
    std::vector<at::Task<void>> tasks;
    tasks.reserve(n);
    auto count = at::background_task([&] { ++ran; }, {.supervisor = &sup});
    for (int round = 0; round < 4; ++round) {
        for (int i = 0; i < n / 4; ++i) tasks.push_back(count());
        sup.wait_idle();
        CHECK(ran == static_cast<int>(tasks.size()));
        CHECK(std::all_of(tasks.begin(), tasks.end(), [](const auto& t) { return t.ready(); }));
    }
    sup.stop();
}

TEST_CASE("supervisor: wait_idle waits for canceled tasks to settle and returns at once when idle" *
          doctest::timeout(30)) {
    at::TaskSupervisor never_started;
    CHECK(never_started.wait_idle(0ms));
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1, .max_size = 1});
    sup.start();
    CHECK(sup.wait_idle(0ms));
    Gate gate;
    auto blocker = occupy(sup, gate);
    auto queued = at::background_task([] { return 1; }, {.supervisor = &sup})();
    auto delayed = at::background_task([] { return 2; }, {.delay = 1h, .supervisor = &sup})();
    CHECK(queued.cancel());
    CHECK(delayed.cancel());
    CHECK_FALSE(sup.wait_idle(10ms));  // the blocker still runs
    gate.open();
    CHECK(sup.wait_idle(20s));
    CHECK(queued.status() == at::TaskStatus::canceled);
    CHECK(delayed.status() == at::TaskStatus::canceled);
    sup.stop();
    CHECK(sup.wait_idle(0ms));
}

TEST_CASE("supervisor: wait_idle from one of its own tasks is refused" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    auto t = at::background_task([&] { sup.wait_idle(); }, {.supervisor = &sup})();
    CHECK_THROWS_WITH_AS(t.get(),
                         "wait_idle() waits for every running task, and it was called from one of this supervisor's "
                         "own tasks (or a completion callback), which would wait for itself; call it from another "
                         "thread",
                         at::Error);
    sup.stop();
}
