// Scenario 7: crash recovery. A task kills its worker process (SIGKILL); we
// time from the death (stamped by the dying task with CLOCK_MONOTONIC) to
// the caller seeing the task's error, and to a replacement worker serving.
#include <array>
#include <csignal>
#include <vector>

#include <fmt/format.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.hpp"
#include "mp_tasks.hpp"
#include "peers/sem_floor.hpp"

namespace atasker_bench {

namespace {

// The floor: a child that stamps the time and kills itself; the parent
// learns of it through a pidfd (as DESIGN.md prescribes) and forks a
// replacement, which must answer one round trip to count as serving.
std::array<double, 2> floor_crash(std::size_t crashes) {
    void* mem = mmap(nullptr, sizeof(std::int64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "cannot map shared memory");
    auto* stamp = static_cast<volatile std::int64_t*>(mem);
    std::vector<double> to_error, to_serving;
    for (std::size_t i = 0; i < crashes; ++i) {
        const pid_t pid = fork();
        if (pid < 0) throw std::system_error(errno, std::generic_category(), "cannot fork");
        if (pid == 0) {
            *stamp = monotonic_ns();
            raise(SIGKILL);
            _exit(1);
        }
        const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
        if (pidfd >= 0) {
            pollfd p{pidfd, POLLIN, 0};
            while (poll(&p, 1, -1) < 0 && errno == EINTR) {
            }
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        const std::int64_t error_at = monotonic_ns();
        if (pidfd >= 0) close(pidfd);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            throw std::runtime_error("crash floor: the child did not die of SIGKILL");
        SemPingPongWorker replacement;
        (void)replacement.round_trip(2);
        const std::int64_t serving_at = monotonic_ns();
        to_error.push_back(static_cast<double>(error_at - *stamp) / 1e3);
        to_serving.push_back(static_cast<double>(serving_at - *stamp) / 1e3);
    }
    munmap(mem, sizeof(std::int64_t));
    return {percentile(to_error, 50), percentile(to_serving, 50)};
}

#if ATASKER_BENCH_HAVE_MP
// Ours, with a process pool of one (as the Python Pool(1) peer): the dying
// task's error, then a task that only the replacement worker can serve.
std::array<double, 2> ours_crash(std::size_t crashes) {
    AtaskerBothPools pools(1);
    (void)atasker::background_task(bench_square, pools.options())(1).get();
    std::vector<double> to_error, to_serving;
    for (std::size_t i = 0; i < crashes; ++i) {
        *death_stamp() = 0;
        auto doomed = atasker::background_task(bench_die, pools.options())(0);
        bool failed = false;
        try {
            (void)doomed.get();
        } catch (const atasker::Error&) {
            failed = true;
        }
        const std::int64_t error_at = monotonic_ns();
        if (!failed) throw std::runtime_error("atasker-cpp: a task that killed its worker did not fail");
        if (atasker::background_task(bench_square, pools.options())(2).get() != 4)
            throw std::runtime_error("atasker-cpp: the replacement worker answered wrongly");
        const std::int64_t serving_at = monotonic_ns();
        to_error.push_back(static_cast<double>(error_at - *death_stamp()) / 1e3);
        to_serving.push_back(static_cast<double>(serving_at - *death_stamp()) / 1e3);
    }
    return {percentile(to_error, 50), percentile(to_serving, 50)};
}
#endif

}  // namespace

void run_crash_recovery(const Config& cfg, Report& report) {
    const std::size_t crashes = cfg.full ? 50 : 20;
    const std::size_t py_crashes = cfg.full ? 10 : 4;
    Section& s = report.section("crash", fmt::format("7. Crash recovery: a task SIGKILLs its worker process ({} "
                                                     "crashes per round, Python {})",
                                                     crashes, py_crashes));
    s.note("from the dying task's CLOCK_MONOTONIC stamp to the caller holding the error, and to a replacement worker "
           "answering a task");
    s.note("the bare reference forks its children from this (large) bench process, whose exit teardown is slower than "
           "a small worker's; atasker-cpp forks workers from a small zygote");
    const std::string group = "worker killed (SIGKILL)";
    RowSet rows;
    std::vector<Measure> measures;
#if ATASKER_BENCH_HAVE_MP
    const std::string ours = "atasker-cpp background_task(MpTask), pool of 1";
    rows.at(group, ours, "death to error p50", "us", Better::lower, true);
    measures.push_back([&](RowSet& rs) {
        const auto r = ours_crash(crashes);
        rs.at(group, ours, "death to error p50", "us", Better::lower, true).samples.push_back(r[0]);
        rs.at(group, ours, "death to serving p50", "us", Better::lower, true).samples.push_back(r[1]);
    });
#else
    s.pending(group, "atasker-cpp background_task(MpTask)", mp_pending);
#endif
    const std::string floor = "fork + pidfd + fork (bare)";
    measures.push_back([&](RowSet& rs) {
        const auto r = floor_crash(crashes);
        rs.at(group, floor, "death to error p50", "us", Better::lower, false).samples.push_back(r[0]);
        rs.at(group, floor, "death to serving p50", "us", Better::lower, false).samples.push_back(r[1]);
    });
    run_rounds(cfg.slow_rounds(), measures, rows);
    rows.move_to(s);

    add_python_peers(s, {"crash", "--crashes", std::to_string(py_crashes), "--rounds",
                                     std::to_string(cfg.slow_rounds()), "--workers", std::to_string(cfg.workers)});
    report.print_section(s);
}

}  // namespace atasker_bench
