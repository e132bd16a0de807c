#pragma once
/// \file system.hpp
/// What the scenarios need from the OS: a clock, CPU time and memory of this
/// process (and of its descendants), CPU pinning, and running the Python peers.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace atasker_bench {

using Clock = std::chrono::steady_clock;

/// Microseconds between two instants, as a double.
[[nodiscard]] inline double micros(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double, std::micro>(to - from).count();
}
[[nodiscard]] inline double seconds(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process, so a
/// worker process can stamp an instant that its parent reads.
[[nodiscard]] std::int64_t monotonic_ns();

/// Nanoseconds of CPU each thread has run, by thread id (sum_exec_runtime,
/// /proc/<pid>/task/<tid>/schedstat: exact, where utime and stime count ticks).
using ThreadCpu = std::map<pid_t, std::uint64_t>;
/// Every thread of this process but the calling one, and every thread of its
/// live descendant processes (worker processes, zygotes): what a pool runs.
[[nodiscard]] ThreadCpu others_cpu();
/// CPU seconds run between two snapshots by the threads alive at the second
/// (a thread born between them counts whole; one that ended, not at all).
[[nodiscard]] double cpu_seconds_between(const ThreadCpu& before, const ThreadCpu& after);

/// Resident set size of this process in bytes (/proc/self/statm).
[[nodiscard]] std::size_t rss_bytes();
/// Bytes allocated through malloc and not yet freed (mallinfo2).
[[nodiscard]] std::size_t heap_bytes();
/// Hands free heap memory (glibc's and oneTBB's scalable allocator's) back to
/// the OS, so RSS deltas start from a clean floor.
void trim_heap();

/// Restricts every thread of this process and of its descendants to `cpus`
/// (an empty list means all CPUs); returns false if any call failed.
bool pin_process_tree(const std::vector<int>& cpus);

/// While it lives, and when made with `on`, this process tree is pinned to
/// CPU 0 (pin_process_tree); all CPUs again once it ends. Threads and child
/// processes made meanwhile inherit the mask.
class PinnedToCpu0 {
public:
    explicit PinnedToCpu0(bool on) : on_(on) {
        if (on_) pin_process_tree({0});
    }
    ~PinnedToCpu0() {
        if (on_) pin_process_tree({});
    }
    PinnedToCpu0(const PinnedToCpu0&) = delete;
    PinnedToCpu0& operator=(const PinnedToCpu0&) = delete;

private:
    bool on_;
};

/// Asks the kernel for its shortest time slice, 100 us, for the calling
/// thread (sched_setattr's sched_runtime, Linux 6.12 on), as atasker-cpp's
/// threads on standby for critical tasks do: woken while every CPU computes,
/// the thread preempts at once. False where the kernel refused.
bool shorten_time_slice();

/// Runs bench/`script_name` with `args` under python3 and returns what it
/// printed on stdout, or nothing (with `why` set) when python3 or the script
/// is missing or the script failed.
[[nodiscard]] std::optional<std::string> run_python_peers(const std::string& script_name,
                                                          const std::vector<std::string>& args, std::string& why);

/// Runs argv[0] (a path) with `argv` and returns what it printed on stdout,
/// or nothing (with `why` set) when it could not start or did not exit 0.
[[nodiscard]] std::optional<std::string> run_captured(std::vector<std::string> argv, std::string& why);

}  // namespace atasker_bench
