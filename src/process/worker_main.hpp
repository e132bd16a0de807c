#pragma once
// The loop a worker process runs: wait for a batch in its slot, run each
// record's registered task, write results, wake the parent.

#include "process/shm_slots.hpp"

namespace atasker::detail {

/// Runs in the worker process until it is killed; never returns. `slots`
/// gives the doorbells a request may name.
[[noreturn]] void run_worker(SlotView slot, const SharedSlots& slots) noexcept;

}  // namespace atasker::detail
