// Scenario 5: process throughput with many tasks in flight: N square(i)
// tasks through a pool of 2 worker processes, tasks/s from first submit to
// last result. Against a two-child semaphore floor and Python's pools.
#include <memory>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench.hpp"
#include "mp_tasks.hpp"
#include "peers/sem_floor.hpp"

namespace atasker_bench {

namespace {

// Each child has one task in hand at a time, handed over by semaphores: what a
// slot-per-worker design without queueing ahead reaches.
double floor_throughput(unsigned workers, std::size_t n) {
    std::vector<std::unique_ptr<SemPingPongWorker>> children;
    for (unsigned i = 0; i < workers; ++i) children.push_back(std::make_unique<SemPingPongWorker>());
    for (auto& c : children) (void)c->round_trip(3);
    const auto t0 = Clock::now();
    std::size_t sent = 0;
    while (sent < n) {
        std::size_t batch = 0;
        for (auto& c : children) {
            if (sent + batch == n) break;
            c->send(static_cast<std::int64_t>(sent + batch));
            ++batch;
        }
        for (std::size_t i = 0; i < batch; ++i) (void)children[i]->receive();
        sent += batch;
    }
    return static_cast<double>(n) / seconds(t0, Clock::now());
}

// The lockstep pair: one thread per child, each driving its own child with
// one call in flight (n / workers calls each), all threads at once: what a
// pool of threads each carrying one process's calls reaches.
double lockstep_throughput(unsigned workers, std::size_t n) {
    std::vector<std::unique_ptr<SemPingPongWorker>> children;
    for (unsigned i = 0; i < workers; ++i) children.push_back(std::make_unique<SemPingPongWorker>());
    for (auto& c : children) (void)c->round_trip(3);
    const std::size_t each = n / workers;
    const auto t0 = Clock::now();
    {
        std::vector<std::jthread> drivers;
        for (auto& c : children)
            drivers.emplace_back([&c, each] {
                for (std::size_t i = 0; i < each; ++i) (void)c->round_trip(static_cast<std::int64_t>(i));
            });
    }
    return static_cast<double>(each * workers) / seconds(t0, Clock::now());
}

#if ATASKER_BENCH_HAVE_MP
// Ours: all n tasks put at once, then every result collected.
double ours_throughput(unsigned workers, std::size_t n, bool fiber) {
    AtaskerBothPools pools(workers);
    for (int i = 0; i < 20; ++i) (void)atasker::background_task(bench_square, pools.options())(3).get();
    const auto t0 = Clock::now();
    long long sum = 0;
    if (fiber) {
        std::vector<boost::fibers::future<int>> futures;
        futures.reserve(n);
        for (std::size_t i = 0; i < n; ++i)
            futures.push_back(atasker::co_mp_apply(bench_square, std::tuple{static_cast<int>(i % 1000)},
                                                   pools.options()));
        for (auto& f : futures) sum += f.get();
    } else {
        using TaskT = decltype(atasker::background_task(bench_square, pools.options())(0));
        std::vector<TaskT> tasks;
        tasks.reserve(n);
        for (std::size_t i = 0; i < n; ++i)
            tasks.push_back(atasker::background_task(bench_square, pools.options())(static_cast<int>(i % 1000)));
        for (auto& t : tasks) sum += t.get();
    }
    const double rate = static_cast<double>(n) / seconds(t0, Clock::now());
    if (sum <= 0) throw std::runtime_error("atasker-cpp: process throughput results are wrong");
    return rate;
}
#endif

}  // namespace

void run_process_throughput(const Config& cfg, Report& report) {
    const std::size_t n = cfg.process_tasks();
    Section& s = report.section("throughput", fmt::format("5. Process throughput: {} tasks square(i) on {} worker "
                                                          "processes",
                                                          n, cfg.workers));
    const std::string group = fmt::format("{} tasks in flight", n);
    s.note("the semaphore lockstep keeps one task per child and no queue: a reference, not a floor, when tasks "
           "can be pipelined (Python's Pool.map streams them through a pipe); 'x2' is one thread driving both "
           "children in turn, 'pair' one thread per child");
    RowSet rows;
    std::vector<Measure> measures;
#if ATASKER_BENCH_HAVE_MP
    for (bool fiber : {false, true}) {
        const std::string peer = fiber ? "atasker-cpp co_mp_apply" : "atasker-cpp background_task(MpTask)";
        rows.at(group, peer, "tasks/s", "tasks/s", Better::higher, true);
        measures.push_back([&cfg, group, peer, n, fiber](RowSet& rs) {
            rs.at(group, peer, "tasks/s", "tasks/s", Better::higher, true)
                .samples.push_back(ours_throughput(cfg.workers, n, fiber));
        });
    }
#else
    s.pending(group, "atasker-cpp background_task(MpTask)", mp_pending);
    s.pending(group, "atasker-cpp co_mp_apply", mp_pending);
#endif
    const std::string floor = "sem_t lockstep x2, fork (1 in flight per child)";
    measures.push_back([&](RowSet& rs) {
        rs.at(group, floor, "tasks/s", "tasks/s", Better::higher, false)
            .samples.push_back(floor_throughput(cfg.workers, n));
    });
    const std::string pair = "sem_t lockstep pair, fork (a thread per child, 1 in flight each)";
    measures.push_back([&](RowSet& rs) {
        rs.at(group, pair, "tasks/s", "tasks/s", Better::higher, false)
            .samples.push_back(lockstep_throughput(cfg.workers, n));
    });
    run_rounds(cfg.rounds, measures, rows);
    rows.move_to(s);

    add_python_peers(s, {"throughput", "--tasks", std::to_string(n), "--rounds", std::to_string(cfg.rounds),
                                     "--workers", std::to_string(cfg.workers)});
    report.print_section(s);
}

}  // namespace atasker_bench
