#pragma once
/// \file detail/mp_call.hpp
/// What a process task hands the process lane to run it: the registry index
/// and type-erased encoders, and the carrier that takes them to a worker.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>

#include <atasker/detail/bytes.hpp>
#include <atasker/detail/task_base.hpp>

namespace atasker::detail {

/// One process task's call, or a chunk of at::map: `items` calls of the same
/// function carried to one worker in one request. Item `i`'s arguments are
/// written and its result read through the encoders; a chunk's items fail
/// one by one (fail_item), while the chunk task itself completes.
struct MpCall {
    TaskBase* task = nullptr;  ///< whose outcome the call stores
    std::uint32_t task_index = 0;
    void* context = nullptr;
    void (*write_args)(void* context, std::size_t item, ByteWriter& out) = nullptr;
    void (*read_result)(void* context, std::size_t item, ByteReader& in) = nullptr;
    std::chrono::nanoseconds timeout{0};  ///< 0: no run timeout (a chunk has none)
    std::size_t items = 1;
    /// A chunk's: item `item` failed with `error` (its function threw, its
    /// worker died running it, its result could not be decoded...).
    void (*fail_item)(void* context, std::size_t item, std::exception_ptr error) noexcept = nullptr;
};

/// Takes a process task's call to a worker process; the process lane hands
/// one to the task's run() (RunContext::carrier).
class CallCarrier {
public:
    /// Carries `call` and stores its outcome in `call.task` (the result
    /// through read_result, or an error: RemoteError when the task threw or
    /// its worker died, TimeoutError, CanceledError, SystemError when a value
    /// larger than the slot found no room in /dev/shm, Error).
    /// A carrier that waits has stored it when carry() returns; one that does
    /// not (a fiber loop's) stores it later and ends the task itself.
    virtual void carry(const MpCall& call) noexcept = 0;

protected:
    ~CallCarrier() = default;
};

}  // namespace atasker::detail
