// Scenario 3: start latency of a critical task while the pool is saturated
// with long low-priority tasks (both workers busy, a queue behind them).
// A FIFO pool makes the urgent task wait behind the queue: that is what a
// user gets without priorities, and it is reported as measured.
#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <semaphore>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench.hpp"
#include "peers/all.hpp"

namespace atasker_bench {

namespace {

// Low tasks sleep, like I/O-bound work: the CPU stays free, so the figure is
// the pool's admission and not the kernel's time slicing on 2 cores. A last
// group has them keep their CPU busy instead, like computing work: then the
// critical task's thread also has to get a CPU from the scheduler.
constexpr auto low_task = std::chrono::milliseconds(2);
enum class LowTask { sleeps, computes };
constexpr std::size_t queued_low = 32;  // waiting behind the busy workers

/// A FIFO pool used for both kinds: the critical task queues like any other.
template <class Pool>
struct Fifo : Pool {
    static constexpr const char* name = Pool::name;
    using Pool::Pool;
    template <class F>
    void post_low(F&& f) {
        this->post(std::forward<F>(f));
    }
    template <class F>
    void post_critical(F&& f) {
        this->post(std::forward<F>(f));
    }
};

/// The floor for "start at once": a FIFO pool for the low tasks and a fresh
/// std::thread for each critical one (what atasker-cpp does when no idle
/// critical thread is at hand).
struct ThreadPerCritical {
    static constexpr const char* name = "asio + std::thread per critical (floor)";
    explicit ThreadPerCritical(unsigned workers) : pool(workers) {}
    ~ThreadPerCritical() {
        for (auto& t : threads) t.join();
    }
    template <class F>
    void post_low(F&& f) {
        pool.post(std::forward<F>(f));
    }
    template <class F>
    void post_critical(F&& f) {
        threads.emplace_back(std::forward<F>(f));
    }
    AsioPool pool;
    std::vector<std::thread> threads;
};

/// The floor for a pool that keeps a thread waiting for critical tasks: a
/// FIFO pool for the low tasks and one thread of its own, asleep on a
/// semaphore with the kernel's shortest time slice (as ours are), that runs
/// each critical task. No queue, no records: only the wake-up of a sleeping
/// thread.
struct SleepingThreadFloor {
    static constexpr const char* name = "asio + one sleeping thread woken per critical (floor)";
    explicit SleepingThreadFloor(unsigned workers) : pool(workers), thread([this] { serve(); }) {}
    ~SleepingThreadFloor() {
        stop = true;
        go.release();
        thread.join();
    }
    template <class F>
    void post_low(F&& f) {
        pool.post(std::forward<F>(f));
    }
    template <class F>
    void post_critical(F&& f) {
        job = std::forward<F>(f);
        go.release();
    }
    void serve() {
        shorten_time_slice();
        for (;;) {
            go.acquire();
            if (stop) return;
            job();
        }
    }
    AsioPool pool;
    std::function<void()> job;
    std::atomic<bool> stop{false};
    std::binary_semaphore go{0};
    std::thread thread;
};

struct CriticalResult {
    double p50 = 0, p99 = 0;
    std::size_t probes = 0;
    std::size_t unsaturated = 0;  // probes put while a worker had no low task
};

/// `gap`: how long the putter sleeps before each probe (0: back to back, the
/// next probe put as soon as the previous one has started).
template <class Pool>
CriticalResult critical_latency(unsigned workers, std::size_t probes, std::chrono::microseconds gap, LowTask kind) {
    std::atomic<std::size_t> low_done{0};
    std::atomic<unsigned> low_running{0};
    std::size_t unsaturated = 0;
    std::size_t low_put = 0;
    std::vector<double> lat;
    {
        Pool pool(workers);
        auto low = [&low_done, &low_running, kind] {
            low_running.fetch_add(1);
            if (kind == LowTask::sleeps) {
                std::this_thread::sleep_for(low_task);
            } else {
                for (const auto end = Clock::now() + low_task; Clock::now() < end;) {
                }
            }
            low_running.fetch_sub(1);
            low_done.fetch_add(1);
            low_done.notify_all();
        };
        auto top_up = [&] {
            while (low_put - low_done.load() < queued_low + workers) {
                pool.post_low(low);
                ++low_put;
            }
        };
        top_up();
        // Let the workers pick up their first low tasks: the pool is saturated.
        std::this_thread::sleep_for(low_task / 2);
        std::binary_semaphore ran{0};
        Clock::time_point started;
        for (std::size_t i = 0; i < probes; ++i) {
            if (gap.count() > 0) std::this_thread::sleep_for(gap);
            top_up();
            if (low_running.load() < workers) ++unsaturated;
            const auto t0 = Clock::now();
            pool.post_critical([&] {
                started = Clock::now();
                ran.release();
            });
            ran.acquire();
            lat.push_back(micros(t0, started));
        }
        for (std::size_t d = low_done.load(); d < low_put; d = low_done.load()) low_done.wait(d);
    }
    return {percentile(lat, 50), percentile(lat, 99), probes, unsaturated};
}

}  // namespace

void run_critical_latency(const Config& cfg, Report& report) {
    const std::size_t probes = cfg.critical_probes();
    const std::size_t fifo_probes = std::clamp<std::size_t>(probes / 10, 5, 10);
    constexpr auto spaced_gap = std::chrono::microseconds(500);
    const std::size_t spaced_probes = std::max<std::size_t>(20, probes / 4);
    Section& s = report.section(
        "critical", fmt::format("3. Critical-task start latency, {} workers busy and {} low tasks queued",
                                cfg.workers, queued_low));
    s.note(fmt::format("low tasks sleep {} ms each (the last group: compute for as long); the queue is topped up "
                       "before every probe; {} probes per round back to back ({} for FIFO pools, whose probes wait "
                       "behind the whole queue), {} probes {} us apart",
                       low_task.count(), probes, fifo_probes, spaced_probes, spaced_gap.count()));
    RowSet rows;
    std::vector<Measure> measures;
    auto add = [&]<class Pool>(std::type_identity<Pool>, const std::string& group, bool ours, std::size_t n,
                               std::chrono::microseconds gap, LowTask kind = LowTask::sleeps) {
        rows.at(group, Pool::name, "p50", "us", Better::lower, ours);
        rows.at(group, Pool::name, "p99", "us", Better::lower, ours);
        measures.push_back([&cfg, group, ours, n, gap, kind](RowSet& rs) {
            const auto r = critical_latency<Pool>(cfg.workers, n, gap, kind);
            rs.at(group, Pool::name, "p50", "us", Better::lower, ours).samples.push_back(r.p50);
            Row& p99 = rs.at(group, Pool::name, "p99", "us", Better::lower, ours);
            p99.samples.push_back(r.p99);
            // Said, not hidden: a probe that found a worker free did not test priorities.
            if (r.unsaturated > 0)
                p99.note = fmt::format("last round: {} of {} probes found a worker without a low task",
                                       r.unsaturated, r.probes);
        });
    };
    // Ours and the two floors, in every group.
    auto add_ours_and_floors = [&](const std::string& group, std::size_t n, std::chrono::microseconds gap,
                                   LowTask kind) {
#if ATASKER_BENCH_HAVE_CORE
        add(std::type_identity<AtaskerPool>{}, group, true, n, gap, kind);
#else
        s.pending(group, "atasker-cpp background_task", core_pending);
#endif
        add(std::type_identity<ThreadPerCritical>{}, group, false, n, gap, kind);
        add(std::type_identity<SleepingThreadFloor>{}, group, false, n, gap, kind);
    };
    // Back to back: critical tasks in a burst, each put as the previous one
    // starts; FIFO pools and oneTBB's priority arenas beside them.
    const std::string burst = "saturated pool, back to back";
    const auto no_gap = std::chrono::microseconds(0);
    add_ours_and_floors(burst, probes, no_gap, LowTask::sleeps);
    add(std::type_identity<Fifo<AsioPool>>{}, burst, false, fifo_probes, no_gap);
#if ATASKER_BENCH_HAVE_TBB
    add(std::type_identity<TbbPriorityArenas>{}, burst, false, probes, no_gap);
#endif
    // Spaced: each critical task alone, the putter asleep before it; the
    // thread that runs it has gone to sleep too.
    add_ours_and_floors(fmt::format("saturated pool, {} us apart", spaced_gap.count()), spaced_probes, spaced_gap,
                        LowTask::sleeps);
    // Computing low tasks, back to back: every CPU is taken.
    add_ours_and_floors("saturated pool, low tasks computing, back to back", probes, no_gap, LowTask::computes);
    run_rounds(cfg.rounds, measures, rows);
    rows.move_to(s);
    report.print_section(s);
}

}  // namespace atasker_bench
