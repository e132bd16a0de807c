#pragma once
/// \file detail/mp_registry.hpp
/// The process-wide registry of process tasks: name -> invoker. MpTask
/// registers at static initialisation, before the process pool forks its
/// workers, so a task's index means the same task in every worker.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <atasker/detail/bytes.hpp>
#include <atasker/export.hpp>
#include <atasker/progress.hpp>

namespace atasker::detail {

/// Decodes arguments from `args`, calls the task function (`fn` points at the
/// MpTask's stored function object), encodes the result into `result`. Lets
/// the task's exception (and SlotOverflow, and at::Error for corrupt
/// arguments) propagate to the caller.
using MpInvoker = void (*)(const void* fn, ByteReader& args, ByteWriter& result, const Progress& progress);

/// One registered process task.
struct MpRegistryEntry {
    std::string name;
    MpInvoker invoke;
    const void* fn;
};

/// Adds a task to the registry; returns its index (registration order).
/// Never throws (it runs during static initialisation; out of memory there
/// terminates). Thread-safe.
ATASKER_API std::uint32_t register_mp_task(std::string name, MpInvoker invoke, const void* fn) noexcept;

/// The entry at `index`, or nullptr when out of range. The pointer stays
/// valid for the life of the process (later registrations do not move it).
/// Thread-safe.
ATASKER_API const MpRegistryEntry* find_mp_task(std::uint32_t index) noexcept;

/// The index of the first task registered under `name`, or nullopt.
/// Thread-safe.
ATASKER_API std::optional<std::uint32_t> find_mp_task(std::string_view name) noexcept;

/// How many tasks are registered. Thread-safe.
ATASKER_API std::size_t mp_task_count() noexcept;

/// Checks that every task name is unique; called when the process pool
/// starts.
/// \throws at::Error naming every duplicated name, e.g. `mp task name "x" is
///         registered twice; give each MpTask a unique name`.
/// Thread-safe.
ATASKER_API void check_mp_registry();

}  // namespace atasker::detail
