// A tour of atasker-cpp: priorities and reserves, task records, a process
// task that crashes its worker without taking the program down, fibers
// awaiting process tasks, and an interval worker.
#include <atasker/atasker.hpp>

#include <csignal>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/fiber/all.hpp>
#include <fmt/core.h>

namespace at = atasker;
using namespace std::chrono_literals;

// Process tasks are registered at namespace scope, before main runs.
inline const at::MpTask square{"square", [](int x) { return x * x; }};
inline const at::MpTask crash{"crash", [](int) -> int {
                                  std::raise(SIGSEGV);
                                  return 0;
                              }};

void expect(bool ok, const char* what) {
    if (!ok) throw std::logic_error(fmt::format("unexpected result: {}", what));
}

int main() try {
    at::init();  // first thing: forks the process pool's zygote before any thread exists

    auto& sup = at::task_supervisor;
    sup.set_thread_pool({.pool_size = 2, .reserve_normal = 1, .reserve_high = 1});
    sup.set_mp_pool({.pool_size = 2});
    sup.start();

    // 1. A named task with a record you can query while it runs and after.
    auto report = at::background_task(
        [](at::Progress& progress, int pages) {
            for (int i = 1; i <= pages; ++i) progress.report(static_cast<double>(i) / pages);
            return pages;
        },
        {.name = "report", .priority = at::Priority::low})(10);
    expect(report.get() == 10, "the report's result");
    fmt::print("1. {}\n", *report.info());
    expect(report.info()->progress == 1.0, "the report's progress");

    // 2. Errors reach get(), the record and the log; nothing is lost.
    auto failing = at::background_task([]() -> int { throw std::runtime_error("disk full"); },
                                       {.name = "save"})();
    try {
        (void)failing.get();
        expect(false, "save fails");
    } catch (const std::runtime_error& e) {
        fmt::print("2. save failed: {} (record: {})\n", e.what(), failing.info()->error);
        expect(failing.status() == at::TaskStatus::failed, "save's status");
    }

    // 3. A process task, and one that crashes its worker: only that task fails.
    const int sq = at::background_task(square, at::Priority::high)(7).get();
    fmt::print("3. square(7) in a worker process = {}\n", sq);
    expect(sq == 49, "square(7)");
    try {
        (void)at::background_task(crash)(0).get();
        expect(false, "the crashing task fails");
    } catch (const at::RemoteError& e) {
        expect(e.type_name() == "signal", "a crash is reported as a signal");
        const int again = at::background_task(square)(8).get();
        fmt::print("   crash: {}; the pool replaced the worker: square(8) = {}\n", e.what(), again);
        expect(again == 64, "square(8) after the crash");
    }

    // 4. Fibers on one thread await process tasks; each waits alone.
    std::vector<boost::fibers::fiber> fibers;
    std::vector<int> squares(5);
    for (int i = 0; i < 5; ++i)
        fibers.emplace_back([&squares, i] { squares[static_cast<std::size_t>(i)] = at::co_mp_apply(square, std::tuple{i}).get(); });
    for (auto& f : fibers) f.join();
    fmt::print("4. from fibers: {} {} {} {} {}\n", squares[0], squares[1], squares[2], squares[3], squares[4]);
    expect(squares == std::vector<int>{0, 1, 4, 9, 16}, "the fibers' squares");

    // 5. An interval worker: three ticks, 10 ms apart, each run a task; the
    // third returns false, which stops the worker.
    int ticks = 0;  // one run at a time touches it
    std::promise<void> ticked;
    auto worker = at::background_worker(
        [&ticks, &ticked] {
            if (++ticks < 3) return true;
            ticked.set_value();
            return false;
        },
        {.name = "tick", .interval = 10ms});
    worker.start();
    ticked.get_future().wait();
    worker.stop();
    fmt::print("5. the worker ticked {} times\n", ticks);
    expect(ticks == 3 && worker.info().runs == 3, "three ticks");

    const auto info = sup.get_info();
    fmt::print("records held: {}, thread pool threads: {}, worker processes: {}\n", info.records,
               info.thread_pool.workers, info.mp_pool.workers);
    sup.stop();
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "tour: {}\n", e.what());
    return 1;
}
