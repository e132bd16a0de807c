#pragma once
/// \file mp_tasks.hpp
/// Our side of the process scenarios: the process tasks the bench registers
/// and a supervisor with both pools up. Built only when the process pool's
/// API compiles (bench/probes/mp_api.cpp).

#if ATASKER_BENCH_HAVE_MP

#include <csignal>
#include <cstdint>

#include <sys/mman.h>

#include <atasker/atasker.hpp>
#include <boost/fiber/future.hpp>

#include "system.hpp"

namespace atasker_bench {

/// One MAP_SHARED word where a dying task stamps CLOCK_MONOTONIC. Made on the
/// first call, which main() makes before at::init() forks the zygote, so
/// every worker process shares it.
inline volatile std::int64_t* death_stamp() {
    static auto* stamp = static_cast<volatile std::int64_t*>(
        mmap(nullptr, sizeof(std::int64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    return stamp;
}

inline const atasker::MpTask bench_square{"atasker_bench.square", [](int x) { return x * x; }};
inline const atasker::MpTask bench_die{"atasker_bench.die", [](int x) -> int {
                                           *death_stamp() = monotonic_ns();
                                           raise(SIGKILL);
                                           return x;
                                       }};

/// A supervisor with a thread pool and a process pool of `workers` each.
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
