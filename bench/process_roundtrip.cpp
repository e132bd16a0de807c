// Scenario 4: process round trip, one task at a time: square(7) sent to a
// worker process and its answer back, unpinned and with everything pinned to
// one CPU. Against the semaphore ping-pong floor and Python's process pools.
#include <array>
#include <vector>

#include <fmt/format.h>

#include "bench.hpp"
#include "mp_tasks.hpp"
#include "peers/sem_floor.hpp"

namespace atasker_bench {

namespace {

std::array<double, 2> floor_round_trip(std::size_t samples, bool pinned) {
    const PinnedToCpu0 pin(pinned);  // before the fork: the child inherits the forking thread's mask
    std::vector<double> lat;
    {
        SemPingPongWorker worker;
        for (int i = 0; i < 100; ++i) (void)worker.round_trip(7);
        lat.reserve(samples);
        for (std::size_t i = 0; i < samples; ++i) {
            const auto t0 = Clock::now();
            if (worker.round_trip(7) != 49) throw std::runtime_error("semaphore floor: wrong answer from the child");
            lat.push_back(micros(t0, Clock::now()));
        }
    }
    return {percentile(lat, 50), percentile(lat, 99)};
}

#if ATASKER_BENCH_HAVE_MP
// How ours is waited for.
enum class Waiter {
    aloop_fiber,  ///< co_mp_apply from a fiber of an aloop (the loop's thread sleeps on the worker's answer)
    main_fiber,   ///< co_mp_apply from the main thread, which Boost.Fiber treats as its main fiber
    task_get,     ///< background_task(MpTask)(7).get()
};

const char* waiter_name(Waiter w) {
    switch (w) {
        case Waiter::aloop_fiber: return "atasker-cpp co_mp_apply, aloop fiber";
        case Waiter::main_fiber: return "atasker-cpp co_mp_apply, main thread";
        case Waiter::task_get: return "atasker-cpp background_task(MpTask)";
    }
    return "";
}

std::array<double, 2> ours_round_trip(unsigned workers, std::size_t samples, bool pinned, Waiter waiter) {
    // Pin first: pool threads fork their workers after start() returns, and
    // a worker inherits the zygote's mask (pinned with the tree here).
    const PinnedToCpu0 pin(pinned);
    AtaskerBothPools pools(workers);
    auto once = [&] {
        if (waiter == Waiter::task_get) return atasker::background_task(bench_square, pools.options())(7).get();
        return atasker::co_mp_apply(bench_square, std::tuple{7}, pools.options()).get();
    };
    auto measure = [&] {
        for (int i = 0; i < 20; ++i) (void)once();
        std::vector<double> lat;
        lat.reserve(samples);
        for (std::size_t i = 0; i < samples; ++i) {
            const auto t0 = Clock::now();
            if (once() != 49) throw std::runtime_error("atasker-cpp: square(7) did not come back as 49");
            lat.push_back(micros(t0, Clock::now()));
        }
        return lat;
    };
    std::vector<double> lat = waiter == Waiter::aloop_fiber
                                  ? pools.supervisor().create_aloop("bench-roundtrip").run(measure)
                                  : measure();
    return {percentile(lat, 50), percentile(lat, 99)};
}
#endif

}  // namespace

void run_process_roundtrip(const Config& cfg, Report& report) {
    const std::size_t samples = cfg.process_samples();
    Section& s = report.section(
        "roundtrip", fmt::format("4. Process round trip of square(7), one at a time ({} per round)", samples));
    s.note("pinned: this process, its threads and its children restricted to CPU 0 (sched_setaffinity)");
    RowSet rows;
    std::vector<Measure> measures;
    for (bool pinned : {false, true}) {
        const std::string group = pinned ? "pinned to CPU 0" : "unpinned";
#if ATASKER_BENCH_HAVE_MP
        for (Waiter waiter : {Waiter::aloop_fiber, Waiter::main_fiber, Waiter::task_get}) {
            const std::string peer = waiter_name(waiter);
            rows.at(group, peer, "p50", "us", Better::lower, true);
            rows.at(group, peer, "p99", "us", Better::lower, true);
            measures.push_back([&cfg, group, peer, pinned, samples, waiter](RowSet& rs) {
                const auto r = ours_round_trip(cfg.workers, samples, pinned, waiter);
                rs.at(group, peer, "p50", "us", Better::lower, true).samples.push_back(r[0]);
                rs.at(group, peer, "p99", "us", Better::lower, true).samples.push_back(r[1]);
            });
        }
#else
        for (const char* peer : {"atasker-cpp co_mp_apply, aloop fiber", "atasker-cpp co_mp_apply, main thread",
                                 "atasker-cpp background_task(MpTask)"})
            s.pending(group, peer, mp_pending);
#endif
        const std::string floor = "sem_t ping-pong, fork (floor)";
        rows.at(group, floor, "p50", "us", Better::lower, false);
        rows.at(group, floor, "p99", "us", Better::lower, false);
        measures.push_back([group, floor, pinned, samples](RowSet& rs) {
            const auto r = floor_round_trip(samples, pinned);
            rs.at(group, floor, "p50", "us", Better::lower, false).samples.push_back(r[0]);
            rs.at(group, floor, "p99", "us", Better::lower, false).samples.push_back(r[1]);
        });
    }
    run_rounds(cfg.rounds, measures, rows);
    rows.move_to(s);

    add_python_peers(s, {"roundtrip", "--samples", std::to_string(samples), "--rounds",
                                     std::to_string(cfg.rounds), "--workers", std::to_string(cfg.workers)});
    report.print_section(s);
}

}  // namespace atasker_bench
