// Scenario 9: bulk submission. at::map of an MpTask over many small inputs
// against Python's Pool.map with its default chunksize, and at::map of a
// thread function against a loop of background_task.
#include <numeric>
#include <vector>

#include <fmt/format.h>

#include "bench.hpp"
#include "mp_tasks.hpp"

namespace atasker_bench {

namespace {

#if ATASKER_BENCH_HAVE_MP
std::vector<int> inputs(std::size_t n) {
    std::vector<int> v(n);
    std::iota(v.begin(), v.end(), 0);
    for (int& x : v) x %= 1000;
    return v;
}

// at::map(square) in the worker processes, chunks chosen by the library.
double ours_process_map(unsigned workers, const std::vector<int>& in) {
    AtaskerBothPools pools(workers);
    const atasker::MapOptions options{.supervisor = &pools.supervisor()};
    (void)atasker::map(bench_square, std::vector<int>{1, 2, 3, 4}, options);
    const auto t0 = Clock::now();
    const std::vector<int> out = atasker::map(bench_square, in, options);
    const double rate = static_cast<double>(in.size()) / seconds(t0, Clock::now());
    if (out.back() != in.back() * in.back()) throw std::runtime_error("atasker-cpp: map results are wrong");
    return rate;
}

int thread_square(int x) { return x * x; }

// On the thread pool: at::map, or one background_task per input.
double ours_thread_map(unsigned workers, const std::vector<int>& in, bool loop) {
    AtaskerBothPools pools(workers);
    const auto t0 = Clock::now();
    long long last = 0;
    if (loop) {
        auto square = atasker::background_task(&thread_square, pools.options());
        std::vector<atasker::Task<int>> tasks;
        tasks.reserve(in.size());
        for (int x : in) tasks.push_back(square(x));
        for (auto& t : tasks) last = t.get();
    } else {
        last = atasker::map(&thread_square, in, {.supervisor = &pools.supervisor()}).back();
    }
    const double rate = static_cast<double>(in.size()) / seconds(t0, Clock::now());
    if (last != static_cast<long long>(in.back()) * in.back())
        throw std::runtime_error("atasker-cpp: map results are wrong");
    return rate;
}
#endif

}  // namespace

void run_bulk_map(const Config& cfg, Report& report) {
    const std::size_t n = cfg.map_inputs();
    Section& s = report.section("map", fmt::format("9. Bulk map: square over {} inputs, {} worker processes or "
                                                   "threads",
                                                   n, cfg.workers));
    const std::string processes = fmt::format("{} inputs, square in worker processes", n);
    const std::string threads = fmt::format("{} inputs, square on threads", n);
    s.note("Python's Pool.map with its default chunksize splits the inputs into 4 chunks per worker; "
           "at::map with chunksize 0 does the same");
    RowSet rows;
    std::vector<Measure> measures;
#if ATASKER_BENCH_HAVE_MP
    const std::vector<int> in = inputs(n);
    const std::string map_peer = "atasker-cpp at::map(MpTask)";
    rows.at(processes, map_peer, "tasks/s", "tasks/s", Better::higher, true);
    measures.push_back([&](RowSet& rs) {
        rs.at(processes, map_peer, "tasks/s", "tasks/s", Better::higher, true)
            .samples.push_back(ours_process_map(cfg.workers, in));
    });
    for (bool loop : {false, true}) {
        const std::string peer = loop ? "atasker-cpp background_task loop" : "atasker-cpp at::map";
        rows.at(threads, peer, "tasks/s", "tasks/s", Better::higher, !loop);
        measures.push_back([&, peer, loop](RowSet& rs) {
            rs.at(threads, peer, "tasks/s", "tasks/s", Better::higher, !loop)
                .samples.push_back(ours_thread_map(cfg.workers, in, loop));
        });
    }
#else
    s.pending(processes, "atasker-cpp at::map(MpTask)", mp_pending);
#endif
    run_rounds(cfg.rounds, measures, rows);
    rows.move_to(s);

    add_python_peers(s, {"map", "--tasks", std::to_string(n), "--rounds", std::to_string(cfg.rounds), "--workers",
                         std::to_string(cfg.workers)});
    report.print_section(s);
}

}  // namespace atasker_bench
