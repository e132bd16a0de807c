// Scenario 6: what a pool costs when it does nothing. Idle CPU over 2 s with
// the pools up; memory per task queued behind a blocked pool of 1; memory
// per fiber waiting on a boost::fibers::future.
#include <array>
#include <cstdio>
#include <stdexcept>
#include <functional>
#include <string_view>
#include <latch>
#include <semaphore>
#include <thread>
#include <vector>

#include <boost/fiber/all.hpp>
#include <fmt/format.h>

#include "bench.hpp"
#include "mp_tasks.hpp"
#include "peers/all.hpp"

namespace atasker_bench {

namespace {

constexpr auto idle_window = std::chrono::seconds(2);

// CPU milliseconds the pool's threads (and its processes) burn while the
// measuring thread sleeps.
template <class Pool>
double idle_cpu_ms(unsigned workers) {
    Pool pool(workers);
    std::latch warm(static_cast<std::ptrdiff_t>(workers) * 4);
    for (unsigned i = 0; i < workers * 4; ++i) pool.post([&warm] { warm.count_down(); });
    warm.wait();
    const ThreadCpu before = others_cpu();
    std::this_thread::sleep_for(idle_window);  // idling is the thing measured
    return cpu_seconds_between(before, others_cpu()) * 1e3;
}

struct NoPool {
    static constexpr const char* name = "no pool (this process alone)";
    explicit NoPool(unsigned) {}
    template <class F>
    void post(F&& f) {
        f();
    }
};

// Bytes per task while n tasks wait behind a pool of one blocked worker.
template <class Pool>
std::array<double, 2> queued_task_bytes(std::size_t n) {
    Pool pool(1);
    std::binary_semaphore blocked{0}, release{0};
    pool.post([&] {
        blocked.release();
        release.acquire();
    });
    blocked.acquire();
    std::latch done(static_cast<std::ptrdiff_t>(n));
    trim_heap();
    const double h0 = static_cast<double>(heap_bytes());
    const double r0 = static_cast<double>(rss_bytes());
    for (std::size_t i = 0; i < n; ++i) pool.post([&done] { done.count_down(); });
    const double h1 = static_cast<double>(heap_bytes());
    const double r1 = static_cast<double>(rss_bytes());
    release.release();
    done.wait();
    const double dn = static_cast<double>(n);
    return {(h1 - h0) / dn, (r1 - r0) / dn};
}

// The same, in a fresh copy of this runner: pooled allocators (oneTBB's, which
// also holds atasker-cpp's tasks) would otherwise hand out memory an earlier
// round touched, and the RSS delta would miss it.
std::array<double, 2> queued_task_bytes_in_child(const std::string& pool, std::size_t n) {
    std::string why;
    const auto text =
        run_captured({"/proc/self/exe", "--memory-child", pool, "--memory-items", std::to_string(n)}, why);
    if (!text) throw std::runtime_error("memory child: " + why);
    std::array<double, 2> out{};
    if (std::sscanf(text->c_str(), "%lf %lf", &out[0], &out[1]) != 2)
        throw std::runtime_error("memory child printed no figures: " + *text);
    return out;
}

// Bytes per fiber (stack, context, promise/future shared state) while n
// fibers each wait on their own boost::fibers::future; measured on a fresh
// thread so the fiber scheduler holds nothing else.
template <class StackAllocator>
std::array<double, 2> waiting_fiber_bytes(std::size_t n, StackAllocator salloc) {
    std::array<double, 2> out{};
    std::thread([&] {
        std::vector<boost::fibers::promise<int>> promises;
        std::vector<boost::fibers::fiber> fibers;
        promises.reserve(n);
        fibers.reserve(n);
        std::size_t waiting = 0;
        trim_heap();
        const double h0 = static_cast<double>(heap_bytes());
        const double r0 = static_cast<double>(rss_bytes());
        for (std::size_t i = 0; i < n; ++i) {
            promises.emplace_back();
            fibers.emplace_back(std::allocator_arg, salloc, [&waiting, f = promises.back().get_future()]() mutable {
                ++waiting;
                (void)f.get();
            });
        }
        // Let every fiber run up to its wait: fiber-level, no thread sleeps.
        while (waiting < n) boost::this_fiber::yield();
        const double h1 = static_cast<double>(heap_bytes());
        const double r1 = static_cast<double>(rss_bytes());
        for (auto& p : promises) p.set_value(1);
        for (auto& f : fibers) f.join();
        const double dn = static_cast<double>(n);
        out = {(h1 - h0) / dn, (r1 - r0) / dn};
    }).join();
    return out;
}

#if ATASKER_BENCH_HAVE_CORE
// The same measure for atasker-cpp: n fibers on an ALoop (its default
// 64 KiB fixed stacks), each waiting on its own boost::fibers::future.
std::array<double, 2> aloop_waiting_fiber_bytes(std::size_t n) {
    atasker::ALoop loop("bench-fibers");
    std::vector<boost::fibers::promise<int>> promises;
    std::vector<boost::fibers::future<int>> finished;
    promises.reserve(n);
    finished.reserve(n);
    std::latch waiting(static_cast<std::ptrdiff_t>(n));
    trim_heap();
    const double h0 = static_cast<double>(heap_bytes());
    const double r0 = static_cast<double>(rss_bytes());
    for (std::size_t i = 0; i < n; ++i) {
        promises.emplace_back();
        finished.push_back(loop.background_task([&waiting, f = promises.back().get_future()]() mutable {
            waiting.count_down();
            return f.get();
        }));
    }
    waiting.wait();
    const double h1 = static_cast<double>(heap_bytes());
    const double r1 = static_cast<double>(rss_bytes());
    for (auto& p : promises) p.set_value(1);
    for (auto& f : finished) (void)f.get();
    const double dn = static_cast<double>(n);
    return {(h1 - h0) / dn, (r1 - r0) / dn};
}
#endif

void idle_section(const Config& cfg, Report& report) {
    Section& s = report.section("idle", fmt::format("6a. Idle CPU over {} s, pools of {} up and warm",
                                                    idle_window.count(), cfg.workers));
    s.note("CPU run by every thread of this process but the measuring one, and of its descendants "
           "(sum_exec_runtime from /proc/*/task/*/schedstat, in ns)");
    const std::string group = fmt::format("{} s idle", idle_window.count());
#if ATASKER_BENCH_HAVE_CORE && !ATASKER_BENCH_HAVE_MP
    s.note("atasker-cpp: thread pool only; the process pool is not built yet");
#endif
    RowSet rows;
    std::vector<Measure> measures;
    auto add = [&]<class Pool>(std::type_identity<Pool>, bool ours) {
        rows.at(group, Pool::name, "CPU", "ms", Better::lower, ours);
        measures.push_back([&cfg, group, ours](RowSet& rs) {
            rs.at(group, Pool::name, "CPU", "ms", Better::lower, ours).samples.push_back(idle_cpu_ms<Pool>(cfg.workers));
        });
    };
    for_each_pool(add);
#if ATASKER_BENCH_HAVE_MP
    add(std::type_identity<AtaskerBothPools>{}, true);
#endif
    add(std::type_identity<NoPool>{}, false);
    run_rounds(cfg.slow_rounds(), measures, rows);
    note_missing_pools(s, group.c_str());
    rows.move_to(s);
    add_python_peers(s, {"idle", "--seconds", std::to_string(idle_window.count()), "--rounds",
                                     std::to_string(cfg.slow_rounds()), "--workers", std::to_string(cfg.workers)});
    report.print_section(s);
}

// One peer's two memory rows (heap, RSS, in `unit`) and the measure that
// fills them with one sample each per round.
void add_memory_rows(RowSet& rows, std::vector<Measure>& measures, const std::string& group, std::string peer,
                     const char* unit, bool ours, std::function<std::array<double, 2>()> measure) {
    rows.at(group, peer, "heap", unit, Better::lower, ours);
    rows.at(group, peer, "RSS", unit, Better::lower, ours);
    measures.push_back([group, peer = std::move(peer), unit, ours, measure = std::move(measure)](RowSet& rs) {
        const auto r = measure();
        rs.at(group, peer, "heap", unit, Better::lower, ours).samples.push_back(r[0]);
        rs.at(group, peer, "RSS", unit, Better::lower, ours).samples.push_back(r[1]);
    });
}

void queued_section(const Config& cfg, Report& report) {
    const std::size_t n = cfg.memory_items();
    Section& s = report.section("idle", fmt::format("6b. Memory per queued task: {} empty tasks behind a blocked "
                                                    "pool of 1",
                                                    n));
    s.note("each round in a fresh process; RSS: /proc/self/statm delta; heap: mallinfo2 in-use delta, which "
           "misses oneTBB's scalable allocator (oneTBB's tasks, and atasker-cpp's task objects)");
    const std::string group = fmt::format("{} queued", n);
    RowSet rows;
    std::vector<Measure> measures;
    for_each_pool([&]<class Pool>(std::type_identity<Pool>, bool ours) {
        add_memory_rows(rows, measures, group, Pool::name, "B/task", ours,
                        [n] { return queued_task_bytes_in_child(Pool::name, n); });
    });
    run_rounds(cfg.slow_rounds(), measures, rows);
    note_missing_pools(s, group.c_str());
    rows.move_to(s);
    report.print_section(s);
}

void fiber_section(const Config& cfg, Report& report) {
    // Protected stacks cost two mappings each: stay well below vm.max_map_count.
    const std::size_t n = std::min<std::size_t>(cfg.memory_items(), 20'000);
    Section& s = report.section("idle", fmt::format("6c. Memory per waiting fiber: {} fibers each waiting on a "
                                                    "boost::fibers::future",
                                                    n));
    s.note("heap: mallinfo2 delta (stack reserved through malloc); RSS: pages touched; includes the promise's "
           "shared state");
    const std::string group = fmt::format("{} fibers", n);
    RowSet rows;
    std::vector<Measure> measures;
    auto add_measure = [&](std::string peer, bool ours, std::function<std::array<double, 2>()> measure) {
        add_memory_rows(rows, measures, group, std::move(peer), "B/fiber", ours, std::move(measure));
    };
    auto add = [&](std::string peer, auto make_alloc) {
        add_measure(std::move(peer), false, [n, make_alloc] { return waiting_fiber_bytes(n, make_alloc()); });
    };
#if ATASKER_BENCH_HAVE_CORE
    add_measure("atasker-cpp ALoop (64 KiB stacks)", true, [n] { return aloop_waiting_fiber_bytes(n); });
#else
    s.pending(group, "atasker-cpp fiber loop (create_aloop)", "atasker-cpp: not built");
#endif
    const std::size_t def = boost::context::stack_traits::default_size();
    add(fmt::format("boost fixedsize_stack {} KiB (default)", def / 1024),
        [] { return boost::fibers::fixedsize_stack(); });
    add(fmt::format("boost protected_fixedsize_stack {} KiB", def / 1024),
        [] { return boost::fibers::protected_fixedsize_stack(); });
    add("boost fixedsize_stack 16 KiB", [] { return boost::fibers::fixedsize_stack(16 * 1024); });
    run_rounds(cfg.slow_rounds(), measures, rows);
    rows.move_to(s);
    report.print_section(s);
}

}  // namespace

int queued_memory_child(const std::string& pool, std::size_t n) {
    bool found = false;
    for_each_pool([&]<class Pool>(std::type_identity<Pool>, bool) {
        if (found || pool != Pool::name) return;
        found = true;
        const auto r = queued_task_bytes<Pool>(n);
        fmt::print("{} {}\n", r[0], r[1]);
    });
    if (!found) fmt::print(stderr, "atasker-bench: --memory-child: no pool named '{}'\n", pool);
    return found ? 0 : 2;
}

void run_idle_and_memory(const Config& cfg, Report& report) {
    idle_section(cfg, report);
    queued_section(cfg, report);
    fiber_section(cfg, report);
}

}  // namespace atasker_bench
