#pragma once
/// \file detail/mp_call.hpp
/// What a process task hands the process pool to run it: the registry index
/// and type-erased encoders, called on a process pool thread.

#include <atomic>
#include <chrono>
#include <cstdint>

#include <atasker/detail/bytes.hpp>
#include <atasker/export.hpp>
#include <atasker/priority.hpp>
#include <atasker/progress.hpp>

namespace atasker::detail {

struct MpCall {
    TaskId id = 0;
    std::uint32_t task_index = 0;
    void* context = nullptr;
    void (*write_args)(void* context, ByteWriter& out) = nullptr;
    void (*read_result)(void* context, ByteReader& in) = nullptr;
    std::chrono::nanoseconds timeout{0};  ///< 0: no run timeout
    std::atomic<int>* running_slot = nullptr;  ///< set while the call runs, for cancel and progress
};

/// Runs `call` in the worker process bound to this process pool thread and
/// reports the worker's last progress through `progress`. Returns when the
/// result was decoded. \throws RemoteError (the task threw, or its worker
/// died: type "signal"/"exit"), TimeoutError (run timeout), CanceledError
/// (canceled while running), SlotOverflow (arguments too large), Error.
ATASKER_API void run_mp_call(const MpCall& call, const Progress& progress);
/// Kills the worker running task `id` on `slot`; false when it no longer runs there.
ATASKER_API bool cancel_mp_call(int slot, TaskId id) noexcept;
/// The progress the task on `slot` last reported (negative when unknown).
[[nodiscard]] ATASKER_API float mp_call_progress(int slot) noexcept;

}  // namespace atasker::detail
