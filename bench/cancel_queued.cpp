// Scenario 8: canceling queued tasks. Behind a pool of one blocked thread, N
// tasks are queued and then canceled one by one, newest first (each one the
// tail of its queue) or oldest first (each one the head). The cost per
// cancel should not grow with N: the supervisor's lock is held meanwhile, so
// every put and completion waits for it. No peer cancels a queued task.
#include <latch>
#include <vector>

#include <fmt/format.h>

#include <atasker/atasker.hpp>

#include "bench.hpp"

namespace atasker_bench {

namespace {

/// Nanoseconds per cancel of `n` queued tasks, in the order given.
double ns_per_cancel(std::size_t n, bool newest_first) {
    atasker::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 1});
    sup.start();
    std::latch release{1};
    std::latch blocking{1};
    auto blocker = atasker::background_task(
        [&] {
            blocking.count_down();
            release.wait();
        },
        {.supervisor = &sup})();
    blocking.wait();
    std::vector<atasker::TaskId> ids;
    ids.reserve(n);
    for (std::size_t i = 0; i < n; ++i) ids.push_back(atasker::background_task([] {}, {.supervisor = &sup})().id());
    const auto t0 = Clock::now();
    std::size_t canceled = 0;
    if (newest_first) {
        for (auto it = ids.rbegin(); it != ids.rend(); ++it) canceled += sup.cancel_task(*it) ? 1 : 0;
    } else {
        for (const auto id : ids) canceled += sup.cancel_task(id) ? 1 : 0;
    }
    const double ns = micros(t0, Clock::now()) * 1000.0 / static_cast<double>(n);
    release.count_down();
    sup.stop();
    if (canceled != n) throw std::runtime_error(fmt::format("canceled {} of {} queued tasks", canceled, n));
    return ns;
}

}  // namespace

void run_cancel_queued(const Config& cfg, Report& report) {
    const std::size_t largest = std::clamp<std::size_t>(cfg.tasks / 2, 40'000, 500'000);
    Section& s = report.section("cancel", fmt::format("8. Canceling queued tasks one by one, behind a blocked pool "
                                                      "of 1 (queues of {} to {})",
                                                      largest / 16, largest));
    s.note("the cost per cancel should stay flat as the queue grows; no peer can cancel a queued task");
    RowSet rows;
    std::vector<Measure> measures;
    for (std::size_t n = largest / 16; n <= largest; n *= 4) {
        const std::string group = fmt::format("{} queued", n);
        for (const bool newest_first : {true, false}) {
            const char* metric = newest_first ? "newest first" : "oldest first";
            rows.at(group, "atasker-cpp", metric, "ns/cancel", Better::lower, true);
            measures.push_back([group, n, newest_first, metric](RowSet& rs) {
                rs.at(group, "atasker-cpp", metric, "ns/cancel", Better::lower, true)
                    .samples.push_back(ns_per_cancel(n, newest_first));
            });
        }
    }
    run_rounds(cfg.slow_rounds(), measures, rows);
    rows.move_to(s);
    report.print_section(s);
}

}  // namespace atasker_bench
