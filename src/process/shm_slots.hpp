#pragma once
// Per-worker slots in one anonymous shared mapping (Boost.Interprocess), and
// the wire layout of the requests and responses carried in them.
//
// A slot belongs to one worker process at a time. It holds no mutex,
// condition variable or allocator: only two process-shared semaphores and
// lock-free atomics, which a process killed at any instruction cannot leave
// in a state that blocks the other side. The parent resets a slot only while
// no process is attached to it (between worker incarnations).

#include <semaphore.h>
#include <sys/types.h>

#include <boost/interprocess/mapped_region.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include <atasker/export.hpp>

#include "sync/doorbell.hpp"

namespace atasker::detail {

/// Control block at the start of each slot.
struct alignas(64) SlotControl {
    sem_t request;   ///< parent -> worker: a batch (or a continuation) is ready
    sem_t response;  ///< worker -> parent: results are ready; the parent's reaper also posts it on death
    std::uint64_t generation = 0;  ///< worker incarnation, written by the parent before the spawn

    /// Progress of the running record, written by the worker.
    alignas(64) std::atomic<double> progress{0.0};
    std::atomic<std::uint32_t> progress_record{0};

    /// Response chunk state: the worker appends results and publishes their
    /// count with release ordering, so the parent can read finished results
    /// even after the worker died.
    alignas(64) std::atomic<std::uint32_t> chunk_count{0};
    std::atomic<std::uint32_t> chunk_state{0};  ///< ChunkState

    /// The worker's lifetime. Limits: written by the parent (before the
    /// spawn, and when the pool's options change), read by the worker after
    /// each batch; 0: none. `initializer`: the MpInit index the worker runs
    /// first, or no_initializer.
    alignas(64) std::atomic<std::uint64_t> max_tasks{0};
    std::atomic<std::uint64_t> max_memory{0};
    std::atomic<std::uint32_t> initializer{0xffffffffU};
    /// LifeFlags, written by the worker: at start (init_failed) and before it
    /// publishes chunk_final (a retire flag, with the count and RSS that
    /// decided it), so the parent sees them with the batch's last answer.
    std::atomic<std::uint32_t> flags{0};
    std::atomic<std::uint64_t> tasks_run{0};
    std::atomic<std::uint64_t> rss{0};
    /// With life_init_failed: "type: message" of the initializer's exception,
    /// NUL-terminated, written before the flag.
    char init_error[512] = {};

    /// Result segments (process/value_segment.hpp): the worker counts one
    /// here before it creates it, so the parent can remove every name this
    /// incarnation may have made, whenever it died; the parent counts those
    /// it has removed (read and unlinked, or cleaned up after a death).
    std::atomic<std::uint64_t> segments_made{0};
    std::uint64_t segments_removed = 0;  ///< the parent's alone
};

/// SlotControl::initializer when the worker runs none.
inline constexpr std::uint32_t no_initializer = 0xffffffffU;

/// SlotControl::flags.
enum LifeFlags : std::uint32_t {
    life_retire_tasks = 1,   ///< it ran max_tasks: replace it before its next call
    life_retire_memory = 2,  ///< its RSS passed max_memory: replace it before its next call
    life_init_failed = 4,    ///< its initializer threw: it answers every task with that error
};
static_assert(std::atomic<double>::is_always_lock_free, "progress needs a lock-free std::atomic<double>");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

/// SlotControl::chunk_state.
enum ChunkState : std::uint32_t {
    chunk_writing = 0,  ///< the worker is (or will be) appending results
    chunk_more = 1,     ///< the response buffer is full; the parent consumes it and posts `request` to continue
    chunk_final = 2,    ///< every record of the batch has its result
};

/// RecordHeader::state: claimed with compare-and-swap by the worker (start,
/// finish) and the parent (cancel before start, kill while running).
enum RecordState : std::uint32_t {
    record_queued = 0,
    record_running = 1,
    record_done = 2,
    record_canceled = 3,        ///< the parent withdrew it before it started
    record_kill_requested = 4,  ///< the parent is killing the worker for this record
};

/// Request buffer: a RequestHeader, then `count` records, each a RecordHeader
/// followed by its argument bytes padded to 8.
struct RequestHeader {
    std::uint64_t seq;
    std::uint32_t count;
    std::uint32_t bell;  ///< the doorbell the worker rings after each response post, or no_bell
    /// AnswerClaim, accessed through std::atomic_ref: who reads the answer
    /// of a request whose doorbell is rung only if nobody claimed it first.
    std::uint32_t answer_claim;
    std::uint32_t reserved;
};
/// RequestHeader::bell when nobody waits on a doorbell (a pool thread waits on the semaphore).
inline constexpr std::uint32_t no_bell = 0xffffffffU;
/// RequestHeader::answer_claim. A request sent claimable (answer_open) is
/// answered to whoever claims it first: a thread that waits for its task
/// (compare-and-swap to answer_waited) then reads the response semaphore
/// and no doorbell is rung; else the first response post (the worker's, or
/// its reaper's on death) swaps it to answer_posted and rings the doorbell.
enum AnswerClaim : std::uint32_t {
    answer_fixed = 0,   ///< not claimable: the doorbell, if any, is always rung
    answer_open = 1,
    answer_waited = 2,
    answer_posted = 3,
};

/// After a response post on the request `head` (by the worker, or its
/// reaper on death): whether its doorbell is to be rung.
inline bool rings_after_post(RequestHeader& head) noexcept {
    std::atomic_ref<std::uint32_t> claim(head.answer_claim);
    std::uint32_t was = answer_open;
    if (claim.compare_exchange_strong(was, answer_posted, std::memory_order_seq_cst)) return true;
    return was != answer_waited;
}
struct RecordHeader {
    std::uint32_t state;  ///< RecordState, accessed through std::atomic_ref
    std::uint32_t task_index;
    std::uint32_t args_size;
    std::uint32_t flags;  ///< value_in_segment: the argument bytes are a SegmentRef
};
/// RecordHeader::flags and ResultHeader::flags: the value crossed through a
/// shared-memory segment made for it; the bytes in the slot are its SegmentRef.
inline constexpr std::uint32_t value_in_segment = 1;

/// Response buffer: results of one chunk, each a ResultHeader followed by its
/// payload padded to 8. An error payload is two length-prefixed strings
/// (exception type name, message).
enum ResultStatus : std::uint32_t { result_ok = 0, result_error = 1, result_canceled = 2 };
struct ResultHeader {
    std::uint32_t record;
    std::uint32_t status;  ///< ResultStatus
    std::uint32_t size;
    std::uint32_t flags;  ///< value_in_segment: the payload is a SegmentRef
};

[[nodiscard]] constexpr std::size_t pad8(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }

/// A view of one slot: its control block and its two buffers.
struct SlotView {
    SlotControl* control;
    std::byte* request;
    std::byte* response;
    std::size_t capacity;  ///< bytes in each of request and response
};

/// The mapping holding every slot. Created once by at::init() before the
/// zygote forks, so the zygote and every worker share it.
class ATASKER_API SharedSlots {
public:
    /// Maps `count` slots whose request and response buffers hold `capacity`
    /// bytes each (Boost.Interprocess anonymous_shared_memory); pages cost
    /// nothing until touched. \throws SystemError when the mapping fails.
    SharedSlots(std::size_t count, std::size_t capacity);
    ~SharedSlots();
    SharedSlots(const SharedSlots&) = delete;
    SharedSlots& operator=(const SharedSlots&) = delete;

    [[nodiscard]] std::size_t count() const noexcept { return count_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] SlotView slot(std::size_t k) const noexcept;
    /// The process that made the mapping (the one that called at::init()),
    /// also in the workers, whose copy of this object it forked: the pid in
    /// the names of value segments.
    [[nodiscard]] pid_t owner() const noexcept { return owner_; }

    /// Doorbells in the mapping, for threads that wait on worker answers
    /// themselves (fiber loops): a worker rings the one its request names.
    static constexpr std::uint32_t doorbell_count = 64;
    [[nodiscard]] Doorbell& doorbell(std::uint32_t i) const noexcept;
    /// Claims a free doorbell for the calling process's use; no_bell when all are taken.
    [[nodiscard]] std::uint32_t claim_doorbell();
    void release_doorbell(std::uint32_t i);

    /// Re-initialises slot k's control block and semaphores for a new worker
    /// incarnation. Only while no process is attached to the slot.
    /// \throws std::system_error when sem_init fails.
    void reset(std::size_t k, std::uint64_t generation);

private:
    boost::interprocess::mapped_region region_;
    std::byte* base_ = nullptr;
    std::size_t count_;
    std::size_t capacity_;
    std::size_t stride_;
    pid_t owner_;
    std::mutex doorbells_mutex_;  // the parent's own: who holds which doorbell
    std::vector<std::uint32_t> free_doorbells_;
};

}  // namespace atasker::detail
