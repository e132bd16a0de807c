#pragma once
/// \file bench.hpp
/// The run's settings and the scenarios, one function per bench/*.cpp file.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "report.hpp"
#include "system.hpp"

namespace atasker_bench {

/// What the command line asked for.
struct Config {
    std::size_t tasks = 200'000;  ///< tiny tasks per throughput round; other sizes derive from it
    int rounds = 5;
    bool full = false;
    unsigned workers = 2;  ///< worker threads (and worker processes) of every pool

    /// Latency samples per round (scenario 2, the semaphore floor of 4).
    [[nodiscard]] std::size_t latency_samples() const { return std::clamp<std::size_t>(tasks / 100, 100, 20'000); }
    /// Critical probes per round against a pool that honours priorities (3).
    [[nodiscard]] std::size_t critical_probes() const { return std::clamp<std::size_t>(tasks / 200, 20, 1'000); }
    /// Round trips per round through a process pool (4).
    [[nodiscard]] std::size_t process_samples() const { return std::clamp<std::size_t>(tasks / 200, 50, 5'000); }
    /// Process tasks per throughput round (5).
    [[nodiscard]] std::size_t process_tasks() const { return std::clamp<std::size_t>(tasks / 20, 500, 50'000); }
    /// Inputs of one bulk map (9): 100k with the default 200k tiny tasks.
    [[nodiscard]] std::size_t map_inputs() const { return std::clamp<std::size_t>(tasks / 2, 1'000, 1'000'000); }
    /// Queued tasks and waiting fibers measured for memory (6).
    [[nodiscard]] std::size_t memory_items() const { return std::clamp<std::size_t>(tasks / 20, 1'000, 100'000); }
    /// Rounds of the slow scenarios (2 s idle windows, crashes).
    [[nodiscard]] int slow_rounds() const { return full ? rounds : std::min(rounds, 2); }
};

/// Rows filled round by round, kept in the order they were first named.
class RowSet {
public:
    /// The row for (group, peer, metric), made on first use.
    Row& at(const std::string& group, const std::string& peer, const std::string& metric, const std::string& unit,
            Better better, bool ours) {
        for (Row& r : rows_)
            if (r.group == group && r.peer == peer && r.metric == metric) return r;
        Row& r = rows_.emplace_back();
        r.group = group;
        r.peer = peer;
        r.metric = metric;
        r.unit = unit;
        r.better = better;
        r.ours = ours;
        return r;
    }
    void move_to(Section& s) {
        for (Row& r : rows_) s.add(std::move(r));
        rows_.clear();
    }

private:
    std::vector<Row> rows_;
};

/// One measurement of one peer; called once per round.
using Measure = std::function<void(RowSet&)>;

/// A peer that did not run a task it was given: oneTBB's task_group does not
/// promise to run a spawned task before someone waits for the group, and
/// once in a while an idle pool's workers never take one.
struct PeerStuck : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Acquires `ran`, released by the task `peer` was given, or throws
/// PeerStuck after 30 s.
template <class Semaphore>
void acquire_or_give_up(Semaphore& ran, const char* peer) {
    if (!ran.try_acquire_for(std::chrono::seconds(30)))
        throw PeerStuck(fmt::format("{}: a task it was given did not start within 30 s", peer));
}

/// Runs every measurement once per round, round after round, so slow drifts
/// of a shared machine spread over all peers instead of hitting one. A
/// measurement whose peer got stuck is left out of the rounds after, and
/// says so on stderr; its rows keep the rounds it finished.
inline void run_rounds(int rounds, const std::vector<Measure>& measures, RowSet& rows) {
    std::vector<bool> stuck(measures.size(), false);
    for (int r = 0; r < rounds; ++r)
        for (std::size_t i = 0; i < measures.size(); ++i) {
            if (stuck[i]) continue;
            try {
                measures[i](rows);
            } catch (const PeerStuck& e) {
                stuck[i] = true;
                fmt::print(stderr, "atasker-bench: {}; left out of the rounds after this one\n", e.what());
            }
        }
}

// Each scenario adds one or more sections to the report and prints them.
void run_tiny_tasks(const Config& cfg, Report& report);
void run_start_latency(const Config& cfg, Report& report);
void run_critical_latency(const Config& cfg, Report& report);
void run_process_roundtrip(const Config& cfg, Report& report);
void run_process_throughput(const Config& cfg, Report& report);
void run_idle_and_memory(const Config& cfg, Report& report);
void run_cancel_queued(const Config& cfg, Report& report);
void run_bulk_map(const Config& cfg, Report& report);
void run_large_values(const Config& cfg, Report& report);
void run_remote_lane(const Config& cfg, Report& report);
/// The worker host run_remote_lane() starts: this runner with
/// --remote-worker URL NAMESPACE PREFETCH.
int remote_worker_main(const std::vector<std::string>& args);
/// The child side of the memory-per-queued-task measure: prints "heap rss"
/// (bytes per task) for the pool named `pool`; returns the exit status.
int queued_memory_child(const std::string& pool, std::size_t n);
void run_crash_recovery(const Config& cfg, Report& report);

/// The text our side's rows show while the process pool is missing.
inline constexpr const char* mp_pending = "atasker-cpp: process pool not built yet";
inline constexpr const char* core_pending = "atasker-cpp: supervisor core not built yet";

/// Runs bench/`script_name` (python_peers.py unless told) with `args` and
/// adds its rows to `s`, or a note saying why there are none (no python3,
/// the script failed).
inline void add_python_peers(Section& s, const std::vector<std::string>& args,
                             const std::string& script_name = "python_peers.py") {
    std::string why;
    if (auto out = run_python_peers(script_name, args, why)) {
        s.add_json(*out);
    } else {
        s.note(why);
    }
}

}  // namespace atasker_bench
