// Scenario 1: tiny-task throughput. N empty tasks (each counts a latch down)
// from 1 and from 4 submitting threads onto a pool of 2 worker threads;
// tasks/s from the first submit to the last task done. Once more with one
// submitter and everything pinned to one CPU: no lock handoffs between CPUs
// and no vCPU wake-ups, so the rate is the CPU cost of a task, and rounds
// agree within a few percent where unpinned ones vary 2x on a VM. And, in an
// untimed pass, how the tasks spread over each pool's threads: a pool may
// leave threads it was given asleep. Ours runs a second time with one thread
// fewer: the submitters need CPUs too.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "bench.hpp"
#include "peers/all.hpp"

namespace atasker_bench {

namespace {

/// A pool of `workers` threads, told how many threads will submit to it
/// where it wants to know (oneTBB's task_group gives each an arena slot).
template <class Pool>
std::unique_ptr<Pool> make_pool(unsigned workers, unsigned submitters) {
    if constexpr (std::is_constructible_v<Pool, unsigned, unsigned>)
        return std::make_unique<Pool>(workers, submitters);
    else
        return std::make_unique<Pool>(workers);
}

template <class Pool>
double throughput(unsigned workers, std::size_t n, unsigned submitters, bool pinned) {
    const PinnedToCpu0 pin(pinned);  // the pool's threads inherit the mask; restored once they are joined
    const std::unique_ptr<Pool> owned = make_pool<Pool>(workers, submitters);
    Pool& pool = *owned;
    {
        // Threads started and first allocations made before the clock runs.
        std::latch warm(64);
        for (int i = 0; i < 64; ++i) pool.post([&warm] { warm.count_down(); });
        warm.wait();
    }
    std::latch done(static_cast<std::ptrdiff_t>(n));
    auto task = [&done] { done.count_down(); };
    Clock::time_point t0, t1;
    if (submitters == 1) {
        t0 = Clock::now();
        for (std::size_t i = 0; i < n; ++i) pool.post(task);
        done.wait();
        t1 = Clock::now();
    } else {
        std::latch go(1);
        std::vector<std::thread> threads;
        for (unsigned s = 0; s < submitters; ++s) {
            const std::size_t share = n / submitters + (s < n % submitters ? 1 : 0);
            // Submitters stay until all is done: a oneTBB task_group's tasks
            // live in the submitting thread's arena slot (its implicit
            // arena's, for the task_group used from outside any arena).
            threads.emplace_back([&, share] {
                go.wait();
                for (std::size_t i = 0; i < share; ++i) pool.post(task);
                done.wait();
            });
        }
        t0 = Clock::now();
        go.count_down();
        done.wait();
        t1 = Clock::now();
        for (auto& t : threads) t.join();
    }
    return static_cast<double>(n) / seconds(t0, t1);
}

/// How many tasks each thread that ran any ran, most first: one untimed pass
/// of the unpinned 1-submitter case.
template <class Pool>
std::vector<std::size_t> tasks_per_thread(unsigned workers, std::size_t n) {
    // A task counts itself on its thread; a thread's first task of this pass
    // hands its counter over once, under the mutex.
    static std::atomic<std::uint64_t> passes{0};
    const std::uint64_t pass = ++passes;
    struct Counter {
        std::uint64_t pass = 0;
        std::size_t tasks = 0;
    };
    thread_local Counter counter;
    std::mutex mutex;
    std::vector<Counter*> counters;
    std::latch done(static_cast<std::ptrdiff_t>(n));
    Pool pool(workers);
    for (std::size_t i = 0; i < n; ++i)
        pool.post([&, pass] {
            if (counter.pass != pass) {
                counter = Counter{pass, 0};
                const std::lock_guard lock(mutex);
                counters.push_back(&counter);
            }
            ++counter.tasks;
            done.count_down();
        });
    done.wait();
    // Read while the pool's threads, and so their counters, still exist.
    std::vector<std::size_t> out;
    for (const Counter* c : counters) out.push_back(c->tasks);
    std::sort(out.begin(), out.end(), std::greater<>());
    return out;
}

#if ATASKER_BENCH_HAVE_CORE
/// Ours with one thread fewer than the pools are given (at least one): where
/// the pools have as many threads as the machine has CPUs, the submitters
/// take turns with them (the guide's supervisor page, "Default sizes").
struct AtaskerPoolOneFewer : AtaskerPool {
    static constexpr const char* name = "atasker-cpp, one thread fewer";
    static constexpr unsigned threads(unsigned workers) { return workers > 1 ? workers - 1 : 1; }
    explicit AtaskerPoolOneFewer(unsigned workers) : AtaskerPool(threads(workers)) {}
};
#endif

/// Every pool of for_each_pool(), then oneTBB's task_group as a program that
/// never makes an arena would use it (fewer workers on a small machine), and
/// ours with one thread fewer.
template <class Fn>
void for_each_tiny_pool(Fn&& fn) {
    for_each_pool(fn);
#if ATASKER_BENCH_HAVE_TBB
    fn(std::type_identity<TbbImplicitTaskGroupPool>{}, false);
#endif
#if ATASKER_BENCH_HAVE_CORE
    fn(std::type_identity<AtaskerPoolOneFewer>{}, false);
#endif
}

}  // namespace

void run_tiny_tasks(const Config& cfg, Report& report) {
    Section& s = report.section(
        "tiny", fmt::format("1. Tiny-task throughput: {} empty tasks on {} worker threads", cfg.tasks, cfg.workers));
    s.note("tasks/s from the first submit to the last task done; each task counts a std::latch down");
    s.note("atasker-cpp: background_task at low priority, task records kept; fire and forget");
    s.note(fmt::format("oneTBB task_group: run() from the submitting thread inside a task_arena with {} worker slots "
                       "and one per submitter, process limited to {} workers (global_control)",
                       cfg.workers, cfg.workers));
#if ATASKER_BENCH_HAVE_TBB
    s.note(fmt::format("oneTBB task_group, implicit arena: run() from outside any arena; the submitting thread's "
                       "implicit arena admits {} worker(s) beside it on this machine, whatever global_control allows",
                       TbbImplicitTaskGroupPool::workers()));
#endif
#if ATASKER_BENCH_HAVE_CORE
    s.note(fmt::format("atasker-cpp, one thread fewer: the same with a pool of {} thread(s), for the submitters' CPUs",
                       AtaskerPoolOneFewer::threads(cfg.workers)));
#endif
    s.note("CPU 0: this process and its threads restricted to CPU 0 (sched_setaffinity), pools made after");
    RowSet rows;
    std::vector<Measure> measures;
    struct Group {
        unsigned submitters;
        bool pinned;
        std::string name;
    };
    const Group groups[] = {{1, false, "1 submitter"}, {4, false, "4 submitters"}, {1, true, "1 submitter, CPU 0"}};
    for (const Group& g : groups) {
        for_each_tiny_pool([&]<class Pool>(std::type_identity<Pool>, bool ours) {
            rows.at(g.name, Pool::name, "tasks/s", "tasks/s", Better::higher, ours);
            measures.push_back([&cfg, g, ours](RowSet& rs) {
                rs.at(g.name, Pool::name, "tasks/s", "tasks/s", Better::higher, ours)
                    .samples.push_back(throughput<Pool>(cfg.workers, cfg.tasks, g.submitters, g.pinned));
            });
        });
    }
    run_rounds(cfg.rounds, measures, rows);
    std::string spread;
    for_each_tiny_pool([&]<class Pool>(std::type_identity<Pool>, bool) {
        const std::vector<std::size_t> counts = tasks_per_thread<Pool>(cfg.workers, cfg.tasks);
        std::string shares;
        for (const std::size_t c : counts)
            shares += fmt::format("{}{:.0f}%", shares.empty() ? "" : " / ", 100.0 * static_cast<double>(c) /
                                                                              static_cast<double>(cfg.tasks));
        spread += fmt::format("{}{}: {} ({})", spread.empty() ? "" : "; ", Pool::name, counts.size(), shares);
    });
    s.note(fmt::format("threads that ran tasks, 1 submitter, one untimed pass: {}", spread));
    note_missing_pools(s, "1 submitter");
    rows.move_to(s);
    report.print_section(s);
}

}  // namespace atasker_bench
