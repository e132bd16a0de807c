#pragma once
// The zygote: a small single-threaded process forked by at::init() before the
// program starts threads. It forks worker processes on request, hands their
// pidfds to the parent, reaps them and reports how they ended. Talking to it
// is a SOCK_SEQPACKET socketpair of fixed-size messages.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include <atasker/export.hpp>

#include "process/shm_slots.hpp"

namespace atasker::detail {

/// Parent -> zygote.
struct ZygoteRequest {
    enum Op : std::uint32_t { spawn = 1 } op;
    std::uint32_t slot;
    std::uint64_t generation;
};

/// Zygote -> parent. `spawned` carries the worker's pidfd (SCM_RIGHTS).
struct ZygoteReply {
    enum Op : std::uint32_t { spawned = 1, spawn_failed = 2, exited = 3 } op;
    std::uint32_t slot;
    std::uint64_t generation;
    std::int32_t pid;
    std::int32_t value;  ///< spawn_failed: errno; exited: wait status
};

/// The parent's handle on the zygote.
class Zygote {
public:
    /// Forks the zygote. `slots` must outlive it (the zygote and its workers
    /// use the same mapping). \throws std::system_error when fork or socketpair fails.
    explicit Zygote(SharedSlots& slots);
    /// Closes the socket (the zygote then kills and reaps its workers and
    /// exits) and reaps the zygote.
    ~Zygote();
    Zygote(const Zygote&) = delete;
    Zygote& operator=(const Zygote&) = delete;

    [[nodiscard]] int socket() const noexcept { return socket_; }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    /// Sends one request. \throws std::system_error when the zygote is gone.
    void send(const ZygoteRequest& request) const;
    /// Receives one reply without blocking. Returns 1 with a reply (and its
    /// pidfd in `fd`, else -1), 0 when none is pending, -1 at end of stream.
    int receive(ZygoteReply& reply, int& fd) const;

    /// Ends the zygote now (as the destructor does). Idempotent.
    void shutdown() noexcept;

private:
    int socket_ = -1;
    pid_t pid_ = -1;
};

// What at::init() creates and every process-pool component shares: the slot
// mapping and the zygote. It lives until shutdown_process_runtime() or the end
// of the program (static destructors never run it down: they could run while
// a pool still uses it).

/// The mapping and zygote init() made. \throws Error when init() was not called.
[[nodiscard]] SharedSlots& runtime_slots();
[[nodiscard]] ATASKER_API Zygote& runtime_zygote();

/// How many at::MpInit were registered when init() forked the zygote: the
/// initializers every worker process has. \throws Error when init() was not called.
[[nodiscard]] std::size_t mp_inits_in_workers();

/// Marks the runtime as used by one WorkerProcesses; false if already used.
[[nodiscard]] bool claim_runtime() noexcept;
void release_runtime() noexcept;

/// Ends the zygote (and with it any worker still alive), reaps it and unmaps
/// the slots; init() may then run again. Not while a WorkerProcesses exists.
/// \throws Error when a WorkerProcesses still uses the runtime.
ATASKER_API void shutdown_process_runtime();

}  // namespace atasker::detail
