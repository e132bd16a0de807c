#pragma once
/// \file priority.hpp
/// Task priorities, task types, task statuses and task ids, all formattable
/// with fmt (`fmt::format("{}", Priority::high)` gives "high").

#include <cstdint>
#include <string_view>

#include <fmt/format.h>

namespace atasker {

/// How urgent a task is; a smaller value is more urgent.
enum class Priority : int { critical = 0, high = 50, normal = 100, low = 200 };
inline constexpr Priority TASK_CRITICAL = Priority::critical;  ///< atasker's spelling of Priority::critical
inline constexpr Priority TASK_HIGH = Priority::high;          ///< atasker's spelling of Priority::high
inline constexpr Priority TASK_NORMAL = Priority::normal;      ///< atasker's spelling of Priority::normal
inline constexpr Priority TASK_LOW = Priority::low;            ///< atasker's spelling of Priority::low

/// Which pool runs a task: a thread, a forked worker process, or a worker
/// process on any host that serves the remote pool (at::serve_remote()).
enum class TaskType : unsigned char { thread, mp, remote };
inline constexpr TaskType TT_THREAD = TaskType::thread;  ///< atasker's spelling of TaskType::thread
inline constexpr TaskType TT_MP = TaskType::mp;          ///< atasker's spelling of TaskType::mp
inline constexpr TaskType TT_REMOTE = TaskType::remote;  ///< atasker's spelling of TaskType::remote

/// Where a task is in its life.
enum class TaskStatus : unsigned char { canceled, queued, delayed, started, completed, failed };

/// Identifies a task: never 0, never reused within a process.
using TaskId = std::uint64_t;

/// The number of priority levels, and a priority's rank (0 = most urgent).
inline constexpr int priority_levels = 4;
/// The rank of `p`: 0 for critical, 1 high, 2 normal, 3 low (indexes PoolInfo's arrays).
[[nodiscard]] constexpr int priority_rank(Priority p) noexcept {
    switch (p) {
        case Priority::critical: return 0;
        case Priority::high: return 1;
        case Priority::normal: return 2;
        case Priority::low: return 3;
    }
    return 3;
}
/// The priority of a rank from 0 (critical) to 3 (low); the inverse of priority_rank().
[[nodiscard]] constexpr Priority priority_of_rank(int rank) noexcept {
    constexpr Priority all[] = {Priority::critical, Priority::high, Priority::normal, Priority::low};
    return all[rank];
}

/// The priority's name: "critical", "high", "normal" or "low".
[[nodiscard]] constexpr std::string_view to_string(Priority p) noexcept {
    switch (p) {
        case Priority::critical: return "critical";
        case Priority::high: return "high";
        case Priority::normal: return "normal";
        case Priority::low: return "low";
    }
    return "unknown";
}
/// The type's name: "thread", "mp" or "remote".
[[nodiscard]] constexpr std::string_view to_string(TaskType t) noexcept {
    switch (t) {
        case TaskType::thread: return "thread";
        case TaskType::mp: return "mp";
        case TaskType::remote: return "remote";
    }
    return "unknown";
}
/// The status's name: "canceled", "queued", "delayed", "started", "completed" or "failed".
[[nodiscard]] constexpr std::string_view to_string(TaskStatus s) noexcept {
    switch (s) {
        case TaskStatus::canceled: return "canceled";
        case TaskStatus::queued: return "queued";
        case TaskStatus::delayed: return "delayed";
        case TaskStatus::started: return "started";
        case TaskStatus::completed: return "completed";
        case TaskStatus::failed: return "failed";
    }
    return "unknown";
}
/// True once a task can change no more.
[[nodiscard]] constexpr bool is_finished(TaskStatus s) noexcept {
    return s == TaskStatus::canceled || s == TaskStatus::completed || s == TaskStatus::failed;
}

}  // namespace atasker

template <>
struct fmt::formatter<atasker::Priority> : fmt::formatter<std::string_view> {
    auto format(atasker::Priority v, format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(atasker::to_string(v), ctx);
    }
};
template <>
struct fmt::formatter<atasker::TaskType> : fmt::formatter<std::string_view> {
    auto format(atasker::TaskType v, format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(atasker::to_string(v), ctx);
    }
};
template <>
struct fmt::formatter<atasker::TaskStatus> : fmt::formatter<std::string_view> {
    auto format(atasker::TaskStatus v, format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(atasker::to_string(v), ctx);
    }
};
