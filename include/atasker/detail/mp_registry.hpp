#pragma once
/// \file detail/mp_registry.hpp
/// The process-wide registry of process tasks: name -> invoker. MpTask
/// registers at static initialisation, before the process pool forks its
/// workers, so a task's index means the same task in every worker.

#include <cstdint>
#include <string>

#include <atasker/detail/bytes.hpp>
#include <atasker/export.hpp>
#include <atasker/progress.hpp>

namespace atasker::detail {

/// Decodes arguments from `args`, calls the task function (`fn` points at the
/// MpTask's stored function object), encodes the result into `result`. Lets
/// the task's exception (and SlotOverflow, and at::Error for corrupt
/// arguments) propagate to the caller.
using MpInvoker = void (*)(const void* fn, ByteReader& args, ByteWriter& result, const Progress& progress);

/// Adds a task to the registry; returns its index (registration order).
/// `signature` is the mangled name of the function type `R(A...)` the
/// callers see (typeid(...).name(): the same in every build with the same
/// ABI), which remote workers compare with the cluster's. Never throws (it
/// runs during static initialisation; out of memory there terminates).
/// Thread-safe. Looking tasks up is the library's business
/// (src/process/mp_registry.hpp).
ATASKER_API std::uint32_t register_mp_task(std::string name, MpInvoker invoke, const void* fn,
                                           const char* signature) noexcept;

/// Adds a worker-process initializer (at::MpInit) to its own registry;
/// returns its index (registration order). Never throws. Thread-safe.
ATASKER_API std::uint32_t register_mp_init(std::string name, void (*fn)()) noexcept;

}  // namespace atasker::detail
