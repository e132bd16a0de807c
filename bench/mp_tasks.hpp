#pragma once
/// \file mp_tasks.hpp
/// Our side of the process scenarios: the process tasks the bench registers
/// and a supervisor with both pools up. Built only when the process pool's
/// API compiles (bench/probes/mp_api.cpp).

#if ATASKER_BENCH_HAVE_MP

#include <atomic>
#include <csignal>
#include <cstdint>
#include <new>
#include <vector>

#include <sched.h>

#include <sys/mman.h>

#include <atasker/atasker.hpp>
#include <boost/fiber/future.hpp>

#include "system.hpp"

namespace atasker_bench {

/// Words every process of the bench shares (MAP_SHARED). Made on the first
/// call, which main() makes before at::init() forks the zygote, so every
/// worker process maps them.
struct SharedWords {
    volatile std::int64_t death_stamp;  ///< where a dying task stamps CLOCK_MONOTONIC
    std::atomic<std::int64_t> met;      ///< bench_meet's count
};
static_assert(std::atomic<std::int64_t>::is_always_lock_free);
inline SharedWords& shared_words() {
    static auto* words = new (mmap(nullptr, sizeof(SharedWords), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                                   -1, 0)) SharedWords{0, 0};
    return *words;
}
inline volatile std::int64_t* death_stamp() { return &shared_words().death_stamp; }

inline const atasker::MpTask bench_square{"atasker_bench.square", [](int x) { return x * x; }};
inline const atasker::MpTask bench_die{"atasker_bench.die", [](int x) -> int {
                                           *death_stamp() = monotonic_ns();
                                           raise(SIGKILL);
                                           return x;
                                       }};

/// Counts itself in, then waits (yielding) until the count reaches `until`:
/// as many of them as there are workers, put at once, prove that every
/// worker process is up.
inline const atasker::MpTask bench_meet{"atasker_bench.meet", [](std::int64_t until) {
                                            std::atomic<std::int64_t>& met = shared_words().met;
                                            met.fetch_add(1);
                                            while (met.load() < until) sched_yield();
                                            return until;
                                        }};

/// A supervisor with a thread pool and a process pool of `workers` each,
/// every worker process up once it is made (the pool forks them in the
/// background after start()).
class AtaskerBothPools {
public:
    static constexpr const char* name = "atasker-cpp thread + process pools";

    explicit AtaskerBothPools(unsigned workers) {
        atasker::PoolOptions pool;
        pool.pool_size = workers;
        pool.min_size = workers;
        supervisor_.set_thread_pool(pool);
        supervisor_.set_mp_pool(pool);
        supervisor_.start();
        options_.supervisor = &supervisor_;
        const std::int64_t until = shared_words().met.load() + workers;
        std::vector<atasker::Task<std::int64_t>> meeting;
        for (unsigned i = 0; i < workers; ++i) meeting.push_back(atasker::background_task(bench_meet, options_)(until));
        for (auto& t : meeting) (void)t.get();
    }
    AtaskerBothPools(const AtaskerBothPools&) = delete;
    AtaskerBothPools& operator=(const AtaskerBothPools&) = delete;
    ~AtaskerBothPools() {
        atasker::StopOptions stop;
        stop.wait = true;
        supervisor_.stop(stop);
    }

    template <class F>
    void post(F&& f) {
        (void)atasker::background_task(std::forward<F>(f), options_)();
    }
    [[nodiscard]] const atasker::TaskOptions& options() const { return options_; }
    [[nodiscard]] atasker::TaskSupervisor& supervisor() { return supervisor_; }

private:
    atasker::TaskSupervisor supervisor_;
    atasker::TaskOptions options_;
};

}  // namespace atasker_bench

#endif
