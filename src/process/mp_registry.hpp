#pragma once
// Looking up the registry of process tasks (MpTask registers itself through
// include/atasker/detail/mp_registry.hpp): the worker processes find a task
// by index, the process lane checks the names before it starts.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <atasker/detail/mp_registry.hpp>
#include <atasker/export.hpp>

namespace atasker::detail {

/// One registered process task.
struct MpRegistryEntry {
    std::string name;
    MpInvoker invoke;
    const void* fn;
    const char* signature;  ///< mangled `R(A...)` (register_mp_task())
};

/// One registered worker-process initializer (at::MpInit).
struct MpInitEntry {
    std::string name;
    void (*fn)();
};

/// The initializer at `index`, or nullptr when out of range; the pointer
/// stays valid for the life of the process. Thread-safe.
ATASKER_API const MpInitEntry* find_mp_init(std::uint32_t index) noexcept;
/// How many initializers are registered. Thread-safe.
ATASKER_API std::size_t mp_init_count() noexcept;

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
