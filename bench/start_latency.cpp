// Scenario 2: submit-to-start latency on an idle pool. One task at a time:
// the time from just before the submit to the task's first instruction,
// waiting for each to finish (and the workers to park) before the next.
#include <array>
#include <semaphore>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench.hpp"
#include "peers/all.hpp"

namespace atasker_bench {

namespace {

// Long enough for workers to go back to sleep between tasks.
constexpr auto idle_gap = std::chrono::microseconds(200);

template <class Pool>
std::array<double, 3> start_latency(unsigned workers, std::size_t samples) {
    // Made before the pool: a peer that got stuck runs its task as the pool
    // goes (oneTBB's task_group waits for its group).
    std::binary_semaphore ran{0};
    Clock::time_point started;
    Pool pool(workers);
    std::vector<double> lat;
    lat.reserve(samples);
    constexpr std::size_t warm = 20;
    for (std::size_t i = 0; i < samples + warm; ++i) {
        std::this_thread::sleep_for(idle_gap);
        const auto t0 = Clock::now();
        pool.post([&] {
            started = Clock::now();
            ran.release();
        });
        acquire_or_give_up(ran, Pool::name);
        if (i >= warm) lat.push_back(micros(t0, started));
    }
    return {percentile(lat, 50), percentile(lat, 99), percentile(lat, 100)};
}

}  // namespace

void run_start_latency(const Config& cfg, Report& report) {
    Section& s = report.section("latency", fmt::format("2. Submit-to-start latency, idle pool of {} threads ({} "
                                                       "tasks per round, one at a time)",
                                                       cfg.workers, cfg.latency_samples()));
    s.note(fmt::format("steady_clock from just before the submit to the task's first instruction; tasks {} us apart",
                       idle_gap.count()));
    RowSet rows;
    std::vector<Measure> measures;
    const std::string group = "idle pool";
    for_each_pool([&]<class Pool>(std::type_identity<Pool>, bool ours) {
        for (const char* m : {"p50", "p99", "max"}) rows.at(group, Pool::name, m, "us", Better::lower, ours);
        measures.push_back([&cfg, group, ours](RowSet& rs) {
            const auto r = start_latency<Pool>(cfg.workers, cfg.latency_samples());
            rs.at(group, Pool::name, "p50", "us", Better::lower, ours).samples.push_back(r[0]);
            rs.at(group, Pool::name, "p99", "us", Better::lower, ours).samples.push_back(r[1]);
            rs.at(group, Pool::name, "max", "us", Better::lower, ours).samples.push_back(r[2]);
        });
    });
    run_rounds(cfg.rounds, measures, rows);
    note_missing_pools(s, group.c_str());
    rows.move_to(s);
    report.print_section(s);
}

}  // namespace atasker_bench
