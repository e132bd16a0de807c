#pragma once
/// \file init.hpp
/// at::init(): prepares the process pool before the program starts threads.

#include <cstddef>

#include <atasker/export.hpp>

namespace atasker {

/// Sizes the process pool's shared memory, fixed for the life of the program.
struct InitOptions {
    /// The most worker processes that can ever run at once (one shared-memory
    /// slot each).
    std::size_t max_workers = 64;
    /// Bytes for one call's arguments and, separately, for one result. The
    /// memory is reserved, not used: pages cost nothing until touched.
    std::size_t slot_size = 1 << 20;
};

/// Prepares process tasks: maps the shared memory of every worker slot and
/// forks the small single-threaded process (the zygote) that forks the worker
/// processes later. Call it first thing in `main`, from the main thread,
/// before any thread starts: forking a process that runs threads can leave
/// the child holding locks nobody releases. If threads already run, logs a
/// warning and goes on. A second call does nothing.
/// \throws Error when an option is zero; std::system_error when the mapping
/// or the fork fails. Thread-safe.
ATASKER_API void init(InitOptions options = {});

/// True once init() has run (and the process pool has not been shut down).
/// Thread-safe.
[[nodiscard]] ATASKER_API bool initialized() noexcept;

/// Ends and reaps the zygote and unmaps the shared memory. The zygote lives
/// from init() to here, idle and without CPU, so that a process pool stopped
/// and started again (TaskSupervisor::stop(), start()) forks its workers from
/// the same clean snapshot instead of from a process that now runs threads.
/// Call it when the program is done with process tasks; it is optional at
/// exit (the zygote ends by itself when its parent does). init() may run
/// again afterwards, with the warning above if threads run by then.
/// \throws Error while a supervisor's process pool still runs (stop it first).
ATASKER_API void shutdown();

}  // namespace atasker
