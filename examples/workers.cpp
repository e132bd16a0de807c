// Background workers, one of each kind: a plain loop, an interval worker, a
// queue worker and an event worker. Every run is a task on the supervisor (it
// has a record under the worker's name and obeys the pool's reserves); an
// idle worker uses no CPU. Each worker here is awaited through a promise set
// by its executor, never by sleeping.
#include <atasker/atasker.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/core.h>

namespace at = atasker;
using namespace std::chrono_literals;

struct Job {
    int id = 0;
    std::string what;
};

void expect(bool ok, const char* what) {
    if (!ok) throw std::logic_error(fmt::format("unexpected result: {}", what));
}

int main() try {
    auto& sup = at::task_supervisor;
    sup.set_thread_pool({.pool_size = 4});
    sup.start();

    // 1. A plain loop: the next run is put as soon as the previous one ended.
    // Returning false stops the worker.
    int loops = 0;  // touched by one run at a time
    std::promise<void> loop_done;
    auto loop = at::background_worker(
        [&loops, &loop_done] {
            if (++loops < 5) return true;
            loop_done.set_value();
            return false;
        },
        {.name = "loop"});
    loop.start();
    loop_done.get_future().wait();
    loop.stop();  // already stopped by its executor; waits for its last run to be recorded
    expect(loops == 5 && loop.info().runs == 5 && !loop.is_active(), "the loop ran five times");

    // 2. An interval worker: a run every 10 ms, planned from start(), never
    // drifting. (`.delay = 10ms` would pause 10 ms after each run instead.)
    std::atomic<int> ticks{0};
    std::promise<void> ticked;
    auto ticker = at::background_worker(
        [&ticks, &ticked] {
            if (++ticks < 3) return true;
            ticked.set_value();
            return false;
        },
        {.name = "tick", .priority = at::Priority::high, .interval = 10ms});
    ticker.start();
    ticked.get_future().wait();
    ticker.stop();
    expect(ticks == 3, "three ticks");

    // 3. A queue worker: the executor takes an item; one run per item, in
    // the order they were put. put() works from any thread.
    std::vector<int> seen;  // touched by one run at a time
    std::promise<void> drained;
    auto jobs = at::background_worker(
        [&seen, &drained](Job job) {
            seen.push_back(job.id);
            if (job.what == "last") drained.set_value();
        },
        {.name = "jobs"});
    jobs.start();
    for (int i = 1; i <= 4; ++i) jobs.put(Job{i, i == 4 ? "last" : "work"});
    drained.get_future().wait();
    jobs.stop();
    expect(seen == std::vector<int>{1, 2, 3, 4}, "jobs in the order they were put");

    // A queue worker that takes the smallest item first (ties: first put, first run).
    std::vector<int> urgent_first;
    std::promise<void> sorted_done;
    auto by_value = at::background_worker<int, std::less<>>(
        [&urgent_first, &sorted_done](int item) {
            urgent_first.push_back(item);
            if (urgent_first.size() == 3) sorted_done.set_value();
        },
        {.name = "smallest-first"});
    for (int item : {30, 10, 20}) by_value.put(item);  // put while stopped: they wait for start()
    by_value.start();
    sorted_done.get_future().wait();
    by_value.stop();
    expect(urgent_first == std::vector<int>{10, 20, 30}, "smallest item first");

    // 4. An event worker: trigger() asks for one run; triggers that arrive
    // while a run is queued or running coalesce into one more run.
    std::promise<void> flushed;
    int flushes = 0;
    auto flush = at::background_worker(
        [&flushed, &flushes] {
            if (++flushes == 1) flushed.set_value();
        },
        {.name = "flush", .event = true});
    flush.start();
    flush.trigger();  // from any thread
    flushed.get_future().wait();
    flush.stop();
    expect(flushes == 1, "one trigger, one run");

    // 5. What an executor throws goes to on_error (or the log); the worker goes on.
    std::promise<std::string> error_seen;
    std::promise<void> recovered;
    int attempts = 0;
    auto flaky = at::background_worker(
        [&attempts, &recovered] {
            if (++attempts == 1) throw std::runtime_error("first run fails");
            recovered.set_value();
            return false;  // the second run stops the worker
        },
        {.name = "flaky", .on_error = [&error_seen](std::exception_ptr error, at::Worker&) {
             try {
                 std::rethrow_exception(error);
             } catch (const std::exception& e) {
                 error_seen.set_value(e.what());
             }
         }});
    flaky.start();
    expect(error_seen.get_future().get() == "first run fails", "on_error sees the exception");
    recovered.get_future().wait();
    flaky.stop();
    expect(flaky.info().errors == 1 && flaky.info().runs == 2, "the worker went on after the error");

    sup.stop();  // stops any worker still active, then the pools
    fmt::print("workers: ok\n");
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "workers: {}\n", e.what());
    return 1;
}
