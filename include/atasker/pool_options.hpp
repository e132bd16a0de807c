#pragma once
/// \file pool_options.hpp
/// How a pool (threads or worker processes) is sized, with atasker's names.

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

#include <atasker/export.hpp>
#include <atasker/mp_init.hpp>

namespace atasker {

/// Sizes a pool. A queued task of priority P starts when fewer tasks run in
/// the pool than its limit — `pool_size` for low, `+ reserve_normal` for
/// normal, `+ reserve_high` for high — and no more urgent task waits.
/// `pool_size = 0` means unlimited, and so does any limit whose sum passes
/// SIZE_MAX. Critical thread tasks always start at once; critical process
/// tasks go to the head of the line.
struct PoolOptions {
    std::size_t pool_size = 0;       ///< limit for low-priority tasks (0 = unlimited)
    std::size_t reserve_normal = 0;  ///< extra room for normal and more urgent tasks
    std::size_t reserve_high = 0;    ///< extra room for high and more urgent tasks
    std::size_t min_size = 0;        ///< threads/processes kept from start()
    /// The most threads/processes the pool holds (critical threads excepted);
    /// default pool_size + reserve_normal + reserve_high (unlimited when pool_size is 0).
    std::optional<std::size_t> max_size{};
    /// How long a thread (or worker process) above min_size waits idle before
    /// it retires.
    std::chrono::nanoseconds idle_timeout = std::chrono::seconds(10);

    /// Process pool only: a worker process is replaced by a fresh one (forked
    /// from the zygote's snapshot) after it ran this many tasks (each item
    /// of an at::map chunk counts); 0: never. The replacement happens between
    /// calls: the call that reached the limit completes and is answered first.
    std::size_t max_tasks_per_worker = 0;
    /// Process pool only: a worker process whose resident set (RSS, read
    /// from /proc/self/statm after each call) passed this many bytes is
    /// replaced after that call; 0: never. set_mp_pool() refuses a limit not
    /// above the RSS a fresh worker starts with (the program's at at::init()).
    std::size_t max_worker_memory = 0;
    /// Process pool only: the at::MpInit each worker process runs once, before
    /// its first task (also each replacement). If it throws, the error is
    /// logged and every task sent to that worker fails with a RemoteError
    /// naming the initializer; the worker is not restarted.
    WorkerInitializer initializer{};
    /// Process pool only: while every worker is busy and tasks wait, a
    /// worker takes several of the waiting tasks with one wake-up and runs
    /// them in turn, as many as it runs in about this long at the pace of
    /// recent calls (at most 32). They are the tasks next in line, each of
    /// a priority that could have had the place; from then they count as
    /// running (status started). Short tasks then cost a fraction of a
    /// round trip each; tasks that take longer than this never wait behind
    /// one another this way. It bounds how long a more urgent task put
    /// meanwhile can wait for a place beyond the task it waits behind.
    /// 0: one task per wake-up. Ignored by the thread pool. Tasks with a
    /// run timeout, and pools with max_tasks_per_worker or
    /// max_worker_memory, run one task per wake-up.
    std::chrono::nanoseconds batch_time = std::chrono::microseconds(250);
    /// Thread pool only: runs once in each pool thread before its first task.
    /// If it throws, the error is logged and every task that thread takes
    /// fails with an Error naming the initializer.
    std::function<void()> thread_initializer{};

    /// The effective max_size (SIZE_MAX for unlimited, also when the sum
    /// pool_size + reserve_normal + reserve_high passes it).
    [[nodiscard]] ATASKER_API std::size_t capacity() const noexcept;
    /// Throws Error naming the wrong value when the options contradict each other.
    ATASKER_API void validate(const char* pool_name) const;
};

}  // namespace atasker
