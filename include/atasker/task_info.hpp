#pragma once
/// \file task_info.hpp
/// Snapshots of a task's record and of a supervisor's state, formattable with fmt.

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <atasker/pool_options.hpp>
#include <atasker/priority.hpp>

namespace atasker {

/// The wall-clock time points a TaskInfo carries.
using SystemTime = std::chrono::system_clock::time_point;

/// A copy of one task's record, as the supervisor keeps it.
struct TaskInfo {
    TaskId id = 0;                            ///< the task's id (Task::id())
    std::string name;                         ///< as given in TaskOptions::name (may be empty)
    TaskType type = TaskType::thread;         ///< the pool that runs it
    Priority priority = Priority::normal;     ///< as it was put
    TaskStatus status = TaskStatus::queued;   ///< where it is in its life
    SystemTime time_queued{};                 ///< when it was put
    std::optional<SystemTime> time_started;   ///< empty until it started
    std::optional<SystemTime> time_completed; ///< empty until it finished (any way)
    double progress = 0.0;                    ///< 0.0 to 1.0, as the task reported it
    std::string error;                        ///< the failure's message; empty unless failed or canceled
    /// Runs started so far: 0 until the first, then 1, and one more per
    /// retry (TaskOptions::retries). A task waiting to retry has `delayed`
    /// status and counts its failed runs. A remote task counts each worker
    /// host it was given to (a host that went silent past its lease, and the
    /// one that took the task over).
    unsigned attempts = 0;
    /// Where a remote task runs or ran: its worker host, as `host:pid`, once
    /// a worker reported that it started it; empty for local tasks.
    std::string worker;
};

/// One pool's configuration and load.
struct PoolInfo {
    PoolOptions options;      ///< as set with set_thread_pool() / set_mp_pool()
    std::size_t workers = 0;  ///< threads or worker processes alive
    std::size_t idle = 0;     ///< of those, waiting for work
    std::array<std::size_t, priority_levels> queued{};   ///< by priority rank: critical, high, normal, low
    std::array<std::size_t, priority_levels> running{};  ///< by priority rank
};

/// What TaskSupervisor::get_info() reports.
struct SupervisorInfo {
    bool active = false;   ///< between start() and stop()
    PoolInfo thread_pool;  ///< the thread pool
    PoolInfo mp_pool;      ///< the process pool (all zero until set_mp_pool())
    /// The remote pool: tasks in flight and queued (workers: 0, they are
    /// elsewhere; all zero until set_remote_pool()).
    PoolInfo remote_pool;
    std::size_t delayed = 0;   ///< tasks waiting for their delay, holding no slot
    std::size_t records = 0;   ///< task records held (unfinished and kept finished)
};

}  // namespace atasker

template <>
struct fmt::formatter<atasker::TaskInfo> {
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }
    auto format(const atasker::TaskInfo& t, format_context& ctx) const {
        auto out = fmt::format_to(ctx.out(), "task {} '{}' ({}, {}): {}", t.id, t.name, t.type, t.priority, t.status);
        if (t.progress > 0.0) out = fmt::format_to(out, ", progress {:.0f}%", t.progress * 100.0);
        if (t.attempts > 1) out = fmt::format_to(out, ", {} attempts", t.attempts);
        if (!t.worker.empty()) out = fmt::format_to(out, ", on {}", t.worker);
        if (!t.error.empty()) out = fmt::format_to(out, ", error: {}", t.error);
        return out;
    }
};

template <>
struct fmt::formatter<atasker::PoolInfo> {
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }
    auto format(const atasker::PoolInfo& p, format_context& ctx) const {
        return fmt::format_to(ctx.out(),
                              "{} workers ({} idle), queued c/h/n/l {}/{}/{}/{}, running c/h/n/l {}/{}/{}/{}", p.workers,
                              p.idle, p.queued[0], p.queued[1], p.queued[2], p.queued[3], p.running[0], p.running[1],
                              p.running[2], p.running[3]);
    }
};

template <>
struct fmt::formatter<atasker::SupervisorInfo> {
    constexpr auto parse(format_parse_context& ctx) { return ctx.begin(); }
    auto format(const atasker::SupervisorInfo& s, format_context& ctx) const {
        auto out = fmt::format_to(ctx.out(), "supervisor {}: threads: {}; processes: {}; ", s.active ? "active" : "stopped",
                                  s.thread_pool, s.mp_pool);
        // The remote pool's workers are elsewhere: its tasks only, when it has any.
        const atasker::PoolInfo& r = s.remote_pool;
        if (r.queued != decltype(r.queued){} || r.running != decltype(r.running){})
            out = fmt::format_to(out, "remote: queued c/h/n/l {}/{}/{}/{}, in flight c/h/n/l {}/{}/{}/{}; ", r.queued[0],
                                 r.queued[1], r.queued[2], r.queued[3], r.running[0], r.running[1], r.running[2],
                                 r.running[3]);
        return fmt::format_to(out, "{} delayed, {} records", s.delayed, s.records);
    }
};
