#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <latch>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test_support::Gate;
using test_support::LogCapture;

namespace {
/// Thread-safe list of values, in the order they were added.
template <class T>
class Recorder {
public:
    void add(T v) {
        std::lock_guard lock(mutex_);
        values_.push_back(std::move(v));
    }
    std::vector<T> values() const {
        std::lock_guard lock(mutex_);
        return values_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<T> values_;
};
}  // namespace

TEST_CASE("workers: an interval worker ticks on its planned times without drift" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    constexpr int ticks = 20;
    // (planned tick, actual start) of each run.
    Recorder<std::pair<Clock::time_point, Clock::time_point>> runs;
    std::latch done{ticks};
    at::Worker* self = nullptr;
    // A run takes 7 ms of a 10 ms interval: planning from the end of each run
    // would put the ticks 17 ms apart, off the 10 ms grid. Checked on the
    // planned ticks themselves, so a loaded machine cannot make it flaky.
    auto worker = at::background_worker(
        [&] {
            const auto started = Clock::now();
            runs.add({*self->info().planned_tick, started});
            std::this_thread::sleep_for(7ms);  // the run's work (the behaviour under test)
            done.count_down();
            return runs.values().size() < ticks;
        },
        {.name = "ticker", .interval = 10ms, .overrun = at::Overrun::run_late_once, .supervisor = &sup});
    self = &worker;
    worker.start();
    done.wait();
    worker.stop();
    const auto r = runs.values();
    REQUIRE(r.size() == ticks);
    const auto grid0 = r.front().first;
    for (std::size_t k = 0; k < r.size(); ++k) {
        CAPTURE(k);
        CHECK(r[k].second >= r[k].first);                                // never early
        CHECK((r[k].first - grid0) % std::chrono::nanoseconds(10ms) == std::chrono::nanoseconds(0));  // on the grid
        if (k > 0) CHECK(r[k].first > r[k - 1].first);                  // each tick once
    }
    CHECK_FALSE(worker.is_active());  // the executor returned false
    sup.stop();
}

TEST_CASE("workers: 20 ticks of 5 ms take at least 95 ms and every tick runs once" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Recorder<Clock::time_point> times;
    std::latch done{20};
    std::atomic<int> runs{0};
    auto worker = at::background_worker(
        [&] {
            times.add(Clock::now());
            done.count_down();
            return ++runs < 20;
        },
        {.interval = 5ms, .supervisor = &sup});
    const auto t0 = Clock::now();
    worker.start();
    done.wait();
    worker.stop();
    const auto t = times.values();
    REQUIRE(t.size() == 20);
    CHECK(t.back() - t0 >= 95ms);
    CHECK(std::is_sorted(t.begin(), t.end()));
    const auto info = worker.info();
    CHECK(info.runs == 20);
    CHECK(info.late_runs == 0);
    sup.stop();
}

TEST_CASE("workers: delay_before shifts the first planned tick" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::promise<Clock::time_point> first;
    auto worker = at::background_worker(
        [&] {
            first.set_value(Clock::now());
            return false;
        },
        {.interval = 5ms, .delay_before = 30ms, .supervisor = &sup});
    const auto t0 = Clock::now();
    worker.start();
    CHECK(first.get_future().get() - t0 >= 30ms);
    worker.stop();
    sup.stop();
}

TEST_CASE("workers: a delay worker waits its delay after each run ends" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Recorder<std::pair<Clock::time_point, Clock::time_point>> runs;  // start, end
    std::latch done{4};
    auto worker = at::background_worker(
        [&] {
            const auto begin = Clock::now();
            std::this_thread::sleep_for(4ms);  // the run takes time (the behaviour under test)
            runs.add({begin, Clock::now()});
            done.count_down();
            return runs.values().size() < 4;
        },
        {.delay = 6ms, .supervisor = &sup});
    worker.start();
    done.wait();
    worker.stop();
    const auto r = runs.values();
    REQUIRE(r.size() == 4);
    for (std::size_t i = 1; i < r.size(); ++i) CHECK(r[i].first - r[i - 1].second >= 6ms);
    sup.stop();
}

TEST_CASE("workers: giving both interval and delay is an error that says what to do") {
    CHECK_THROWS_WITH_AS(at::background_worker([] {}, {.name = "both", .interval = 1s, .delay = 1s}),
                         "worker 'both': give interval or delay, not both (interval keeps a fixed rate, delay "
                         "pauses after each run)",
                         at::Error);
    CHECK_THROWS_AS(at::background_worker([] {}, {.interval = 1s, .event = true}), at::Error);
    CHECK_THROWS_AS(at::background_worker([](int) {}, {.delay = 1s}), at::Error);
}

TEST_CASE("workers: starting on a stopped supervisor throws") {
    at::TaskSupervisor sup;
    auto worker = at::background_worker([] {}, {.name = "early", .supervisor = &sup});
    CHECK_THROWS_WITH_AS(worker.start(),
                         "task supervisor is not started; call start() on it before starting worker 'early'",
                         at::Error);
    CHECK_FALSE(worker.is_active());
}

namespace {

// An interval worker of 10 ms whose first run is slow on purpose (35 ms, the
// overrun under test), stopped after three runs.
struct OverrunRuns {
    Clock::time_point t0;          // when the worker started
    Clock::time_point slow_end;    // when the slow first run ended
    std::vector<Clock::time_point> starts;
    at::WorkerInfo info;
};

OverrunRuns run_with_a_slow_first_run(at::Overrun overrun) {
    at::TaskSupervisor sup;
    sup.start();
    Recorder<Clock::time_point> times;
    std::promise<Clock::time_point> slow_end;
    std::latch done{3};
    auto worker = at::background_worker(
        [&] {
            times.add(Clock::now());
            if (times.values().size() == 1) {
                std::this_thread::sleep_for(35ms);  // the slow run (the behaviour under test): overruns ticks 10, 20, 30
                slow_end.set_value(Clock::now());
            }
            done.count_down();
            return times.values().size() < 3;
        },
        {.interval = 10ms, .overrun = overrun, .supervisor = &sup});
    OverrunRuns out;
    out.t0 = Clock::now();
    worker.start();
    done.wait();
    worker.stop();
    out.starts = times.values();
    out.info = worker.info();
    out.slow_end = slow_end.get_future().get();
    sup.stop();
    return out;
}

}  // namespace

TEST_CASE("workers: skip drops the ticks a slow run missed and resumes on the next planned tick" *
          doctest::timeout(30)) {
    const auto r = run_with_a_slow_first_run(at::Overrun::skip);
    CHECK(r.info.skipped_ticks >= 3);
    CHECK(r.info.late_runs == 0);
    REQUIRE(r.starts.size() == 3);
    CHECK(r.starts[1] - r.t0 >= 40ms);  // the next planned tick after the slow run
    CHECK(r.starts[2] - r.t0 >= 50ms);
}

TEST_CASE("workers: run_late_once runs one late run right after a slow run, then keeps the plan" *
          doctest::timeout(30)) {
    const auto r = run_with_a_slow_first_run(at::Overrun::run_late_once);
    CHECK(r.info.late_runs >= 1);
    CHECK(r.info.skipped_ticks >= 2);  // ticks 10 and 20; tick 30 ran late
    REQUIRE(r.starts.size() == 3);
    CHECK(r.starts[1] >= r.slow_end);
    CHECK(r.starts[2] - r.t0 >= 40ms);  // back on the plan
}

TEST_CASE("workers: a queue worker processes items from one thread in order" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Recorder<int> seen;
    std::latch done{100};
    auto worker = at::background_worker(
        [&](int item) {
            seen.add(item);
            done.count_down();
        },
        {.name = "queue", .supervisor = &sup});
    static_assert(std::is_same_v<decltype(worker), at::QueueWorker<int>>);
    worker.start();
    for (int i = 0; i < 100; ++i) worker.put(i);
    done.wait();
    worker.stop();
    std::vector<int> expected(100);
    for (int i = 0; i < 100; ++i) expected[static_cast<std::size_t>(i)] = i;
    CHECK(seen.values() == expected);
    CHECK(worker.info().runs == 100);
    sup.stop();
}

TEST_CASE("workers: put from 8 threads never blocks and every item is processed exactly once" *
          doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.start();
    constexpr int producers = 8;
    constexpr int per_producer = 2000;
    Recorder<int> seen;
    std::latch done{producers * per_producer};
    auto worker = at::background_worker<int>([&](int item) {
        seen.add(item);
        done.count_down();
    }, {.supervisor = &sup});
    worker.start();
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&, p] {
            for (int i = 0; i < per_producer; ++i) worker.put(p * per_producer + i);
        });
    for (auto& t : threads) t.join();
    done.wait();
    worker.stop();
    auto v = seen.values();
    REQUIRE(v.size() == producers * per_producer);
    std::sort(v.begin(), v.end());
    for (int i = 0; i < producers * per_producer; ++i) CHECK(v[static_cast<std::size_t>(i)] == i);
    CHECK(worker.size() == 0);
    sup.stop();
}

TEST_CASE("workers: a priority queue worker takes the smallest item first, FIFO among equals" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    using Item = std::pair<int, std::string>;
    struct ByFirst {
        bool operator()(const Item& a, const Item& b) const { return a.first < b.first; }
    };
    Recorder<std::string> seen;
    std::latch done{6};
    auto worker = at::background_worker<Item, ByFirst>(
        [&](const Item& item) {
            seen.add(item.second);
            done.count_down();
        },
        {.supervisor = &sup});
    // Put them while stopped so they are all waiting when the worker starts.
    for (const Item& i : {Item{3, "c"}, Item{1, "a1"}, Item{2, "b"}, Item{1, "a2"}, Item{5, "e"}, Item{4, "d"}})
        worker.put(i);
    CHECK(worker.info().queued == 6);
    worker.start();
    done.wait();
    worker.stop();
    CHECK(seen.values() == std::vector<std::string>{"a1", "a2", "b", "c", "d", "e"});

    auto less = at::background_worker<int, std::less<>>([](int) {}, {.supervisor = &sup});
    static_assert(std::is_same_v<decltype(less), at::QueueWorker<int, std::less<>>>);
    sup.stop();
}

TEST_CASE("workers: triggers during a run coalesce into exactly one more run" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    std::latch first_started{1};
    std::atomic<int> runs{0};
    std::promise<void> second_done;
    auto worker = at::background_worker(
        [&] {
            const int n = ++runs;
            if (n == 1) {
                first_started.count_down();
                gate.wait();
            }
            if (n == 2) second_done.set_value();
        },
        {.name = "events", .event = true, .supervisor = &sup});
    worker.start();
    CHECK(worker.info().runs == 0);  // nothing until triggered
    worker.trigger();
    first_started.wait();
    for (int i = 0; i < 50; ++i) worker.trigger();
    gate.open();
    second_done.get_future().get();
    worker.stop();  // waits for anything in flight
    CHECK(runs == 2);
    CHECK(worker.info().runs == 2);
    CHECK_THROWS_AS(at::background_worker([] {}, {.supervisor = &sup}).trigger(), at::Error);
    sup.stop();
}

TEST_CASE("workers: stop from inside the executor ends the worker after that run" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::atomic<int> runs{0};
    std::latch stopped{1};
    at::Worker* self = nullptr;
    std::atomic<bool> inactive_inside{false};
    auto worker = at::background_worker(
        [&] {
            ++runs;
            self->stop();  // from inside: only marks it stopped
            inactive_inside = !self->is_active();
            stopped.count_down();
        },
        {.supervisor = &sup});
    self = &worker;
    worker.start();
    stopped.wait();
    worker.stop();  // from outside: waits for the run to end
    CHECK_FALSE(worker.info().running);
    CHECK(inactive_inside);
    CHECK(runs == 1);
    sup.stop();
}

TEST_CASE("workers: stop with wait returns after the run in progress ended" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Gate gate;
    std::latch started{1};
    std::atomic<bool> run_ended{false};
    std::atomic<int> runs{0};
    auto worker = at::background_worker(
        [&] {
            if (++runs == 1) {
                started.count_down();
                gate.wait();
            }
            run_ended = true;
        },
        {.supervisor = &sup});
    worker.start();
    started.wait();
    auto stopping = std::async(std::launch::async, [&] { worker.stop(true); });
    CHECK(stopping.wait_for(20ms) == std::future_status::timeout);  // still waiting for the run
    CHECK_FALSE(run_ended);
    gate.open();
    stopping.get();
    CHECK(run_ended);
    CHECK_FALSE(worker.info().running);
    const auto info = sup.get_task_info(worker.info().last_task);
    REQUIRE(info);
    CHECK(info->status == at::TaskStatus::completed);
    CHECK(runs == 1);
    sup.stop();
}

TEST_CASE("workers: stop asks a running executor to stop through its stop token" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::latch started{1};
    std::atomic<bool> saw_stop{false};
    auto worker = at::background_worker(
        [&](std::stop_token token) {
            started.count_down();
            saw_stop = test_support::wait_for_stop(token);
        },
        {.supervisor = &sup});
    worker.start();
    started.wait();
    worker.stop();
    CHECK(saw_stop);
    sup.stop();
}

TEST_CASE("workers: an executor returning false stops the worker" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::atomic<int> runs{0};
    std::promise<void> third;
    auto worker = at::background_worker(
        [&] {
            if (++runs == 3) {
                third.set_value();
                return false;
            }
            return true;
        },
        {.supervisor = &sup});
    worker.start();
    third.get_future().get();
    worker.stop();
    CHECK(runs == 3);
    CHECK_FALSE(worker.is_active());
    sup.stop();
}

TEST_CASE("workers: executor errors reach on_error and the worker goes on" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Recorder<std::string> errors;
    std::latch three_errors{3};
    std::atomic<int> runs{0};
    std::atomic<at::Worker*> seen_worker{nullptr};
    std::promise<void> fourth;
    auto worker = at::background_worker(
        [&]() -> bool {
            if (++runs <= 3) throw std::runtime_error(fmt::format("bad run {}", runs.load()));
            fourth.set_value();
            return false;
        },
        {.name = "flaky",
         .on_error =
             [&](std::exception_ptr e, at::Worker& w) {
                 seen_worker = &w;
                 try {
                     std::rethrow_exception(e);
                 } catch (const std::exception& ex) {
                     errors.add(ex.what());
                 }
                 three_errors.count_down();
             },
         .supervisor = &sup});
    worker.start();
    three_errors.wait();
    fourth.get_future().get();
    worker.stop();
    CHECK(errors.values() == std::vector<std::string>{"bad run 1", "bad run 2", "bad run 3"});
    CHECK(seen_worker.load() == &worker);
    sup.stop();
    CHECK(runs == 4);  // it went on, and the fourth run stopped it
    CHECK(worker.info().errors == 3);
}

TEST_CASE("workers: without on_error an executor error is logged" * doctest::timeout(30)) {
    LogCapture log;
    at::TaskSupervisor sup;
    sup.start();
    std::promise<void> second;
    std::atomic<int> runs{0};
    auto worker = at::background_worker(
        [&]() -> bool {
            if (++runs == 1) throw std::runtime_error("boom");
            second.set_value();
            return false;
        },
        {.name = "loud", .supervisor = &sup});
    worker.start();
    second.get_future().get();
    worker.stop();
    sup.stop();
    bool logged = false;
    for (const auto& [level, line] : log.lines())
        logged |= level == at::LogLevel::error && line == "worker 'loud' executor failed: boom";
    CHECK(logged);
}

TEST_CASE("workers: runs show in get_task_info with the worker's name and priority" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::promise<at::TaskInfo> seen;
    std::atomic<bool> once{false};
    auto worker = at::background_worker(
        [&] {
            if (once.exchange(true)) return;
            for (const auto& t : sup.get_tasks())
                if (t.status == at::TaskStatus::started) seen.set_value(t);  // the only task running: this run
        },
        {.name = "reporter", .priority = at::Priority::high, .event = true, .supervisor = &sup});
    worker.start();
    worker.trigger();
    const auto info = seen.get_future().get();
    CHECK(info.name == "reporter");
    CHECK(info.priority == at::Priority::high);
    CHECK(info.status == at::TaskStatus::started);
    worker.stop();

    // start() overrides: atasker's _name and _priority.
    once = false;
    seen = {};
    worker.start({.name = "renamed", .priority = at::Priority::low});
    auto f = seen.get_future();
    worker.trigger();
    const auto info2 = f.get();
    CHECK(info2.name == "renamed");
    CHECK(info2.priority == at::Priority::low);
    CHECK(worker.info().name == "renamed");
    worker.stop();
    sup.stop();
}

TEST_CASE("workers: start overrides the interval" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    Recorder<Clock::time_point> times;
    std::latch done{3};
    auto worker = at::background_worker(
        [&] {
            times.add(Clock::now());
            done.count_down();
            return times.values().size() < 3;
        },
        {.interval = 1h, .supervisor = &sup});
    const auto t0 = Clock::now();
    worker.start({.interval = 10ms});
    done.wait();
    worker.stop();
    CHECK(times.values().back() - t0 >= 20ms);
    CHECK_THROWS_AS(at::background_worker([] {}, {.supervisor = &sup}).start({.interval = 1s}), at::Error);
    sup.stop();
}

TEST_CASE("workers: supervisor stop stops a running worker before draining the pools" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2});
    sup.start();
    std::latch started{1};
    std::atomic<int> runs{0};
    auto worker = at::background_worker(
        [&](std::stop_token token) {
            ++runs;
            started.count_down();
            test_support::wait_for_stop(token);  // runs until asked to stop
        },
        {.supervisor = &sup});
    worker.start();
    started.wait();
    // Without stopping the worker first, the pool would never drain: its
    // runs keep putting more runs.
    CHECK(sup.stop());
    CHECK_FALSE(worker.is_active());
    CHECK_FALSE(worker.info().running);
    CHECK(runs == 1);
}

TEST_CASE("workers: a plain loop worker runs again and again until stopped" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    std::latch hundred{100};
    std::atomic<int> runs{0};
    auto worker = at::background_worker(
        [&] {
            if (++runs <= 100) hundred.count_down();
        },
        {.supervisor = &sup});
    worker.start();
    hundred.wait();
    worker.stop();
    const int after_stop = runs;
    CHECK(after_stop >= 100);
    CHECK(worker.info().runs == static_cast<std::uint64_t>(after_stop));
    CHECK_FALSE(sup.get_info().thread_pool.running[2] != 0);  // nothing of it still runs
    sup.stop();
}
