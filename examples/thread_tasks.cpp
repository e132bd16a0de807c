// Thread tasks: priorities decide which queued task starts first, a critical
// task starts at once, and every task has a record (status, times, progress,
// error) you can query while it waits, while it runs and after it ended.
#include <atasker/atasker.hpp>

#include <condition_variable>
#include <future>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include <fmt/core.h>

namespace at = atasker;
using namespace std::chrono_literals;

// Stops the example with a message when a result is not what it should be.
void expect(bool ok, const char* what) {
    if (!ok) throw std::logic_error(fmt::format("unexpected result: {}", what));
}

int main() try {
    auto& sup = at::task_supervisor;
    // One thread for low tasks and no reserves: while it is busy, every task
    // below critical queues, and the queue's order is the priorities' order.
    sup.set_thread_pool({.pool_size = 1});
    sup.set_retention({.max_finished = 100, .max_age = 1h});  // keep finished records for an hour
    sup.start();

    // 1. Hold the only thread until `release` is set.
    std::latch holding{1};
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    auto blocker = at::background_task(
        [&holding, released] {
            holding.count_down();
            released.wait();
        },
        {.name = "blocker", .priority = at::Priority::low})();
    holding.wait();

    // 2. Three tasks queue behind it, put lowest priority first.
    std::mutex order_mutex;
    std::vector<std::string> order;
    auto note = [&order_mutex, &order](std::string what) {
        std::lock_guard lock(order_mutex);
        order.push_back(std::move(what));
    };
    auto low = at::background_task(note, at::Priority::low)("low");
    auto normal = at::background_task(note, at::Priority::normal)("normal");
    auto high = at::background_task(note, {.name = "urgent", .priority = at::Priority::high})("high");
    expect(low.status() == at::TaskStatus::queued, "a task behind a busy pool is queued");
    expect(high.info()->name == "urgent", "the record carries the task's name");

    // A delayed task waits without holding a slot; a queued or delayed task
    // can be canceled, and then never runs.
    auto later = at::background_task(note, {.name = "later", .delay = 1h})("later");
    expect(later.status() == at::TaskStatus::delayed, "a task with a delay is delayed");
    expect(later.cancel(), "a delayed task can be canceled");
    expect(later.status() == at::TaskStatus::canceled, "a canceled task says so");
    try {
        later.get();
        expect(false, "get() of a canceled task throws");
    } catch (const at::CanceledError&) {
    }

    // 3. A critical task does not wait: the pool grows for it.
    auto alarm = at::background_task([] { return 112; }, at::Priority::critical)();
    expect(alarm.get() == 112, "a critical task runs while the pool is full");

    // 4. Let the queue go: high, then normal, then low.
    release.set_value();
    blocker.get();
    low.get();  // put first, started last
    normal.get();
    high.get();
    expect(order == std::vector<std::string>{"high", "normal", "low"}, "queued tasks start by priority");

    // 5. Records stay queryable after the task ended.
    const std::optional<at::TaskInfo> info = sup.get_task_info(high.id());
    expect(info && info->status == at::TaskStatus::completed, "the record says completed");
    expect(info->priority == at::Priority::high && info->time_started && info->time_completed,
           "the record has the priority and the start and end times");
    fmt::print("{}\n", *info);  // task <id> 'urgent' (thread, high): completed

    // 6. Progress: a task function may take an at::Progress& before its own arguments.
    auto report = at::background_task(
        [](at::Progress& progress, int pages) {
            for (int i = 1; i <= pages; ++i) progress.report(static_cast<double>(i) / pages);
            return pages;
        },
        {.name = "report"})(10);
    expect(report.get() == 10 && report.info()->progress == 1.0, "progress reaches the record");

    // 7. An exception is never lost: it reaches get(), the record and the log.
    auto save = at::background_task([]() -> int { throw std::runtime_error("disk full"); }, {.name = "save"})();
    try {
        (void)save.get();
        expect(false, "get() rethrows the task's exception");
    } catch (const std::runtime_error& e) {
        expect(std::string(e.what()) == "disk full", "the original exception comes back");
    }
    expect(save.status() == at::TaskStatus::failed, "a task that threw has failed");
    fmt::print("{}\n", *save.info());  // task <id> 'save' (thread, normal): failed, error: disk full

    // 8. Cooperative cancel: a function that takes a std::stop_token first
    // sees the request, and ends as canceled by throwing CanceledError.
    std::latch waiting{1};
    auto watcher = at::background_task([&waiting](std::stop_token stop) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        waiting.count_down();
        cv.wait(lock, stop, [] { return false; });  // returns when a stop is requested
        throw at::CanceledError("watcher asked to stop");
    })();
    waiting.wait();
    expect(watcher.cancel(), "a running task that takes a stop token can be canceled");
    watcher.wait();
    expect(watcher.status() == at::TaskStatus::canceled, "it ends as canceled");

    // 9. Many tasks at once, waited for together; a completion callback.
    std::vector<at::Task<int>> batch;
    for (int i = 0; i < 10; ++i) batch.push_back(at::background_task([](int x) { return x * x; })(i));
    const std::vector<int> squares = at::wait_completed(batch, 5s);
    expect(squares[9] == 81, "wait_completed returns the results in order");

    std::promise<int> seen;
    std::future<int> seen_value = seen.get_future();
    auto with_callback = at::background_task([](int x) { return x + 1; })
                             .callback([p = std::move(seen)](const at::Task<int>& done) mutable {
                                 p.set_value(done.get());  // the outcome is stored: get() returns at once
                             });
    std::move(with_callback)(41);  // a move-only callback moves into the task
    expect(seen_value.get() == 42, "the callback sees the result");

    // 10. Every record the supervisor holds, and the pools' state.
    const std::vector<at::TaskInfo> records = sup.get_tasks(at::TaskType::thread);
    expect(records.size() >= 20, "finished records are kept");
    fmt::print("{}\n", sup.get_info());

    sup.stop();
    fmt::print("thread_tasks: ok\n");
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "thread_tasks: {}\n", e.what());
    return 1;
}
