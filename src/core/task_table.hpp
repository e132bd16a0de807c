#pragma once
// TaskTable: the record of every task, in a slab. A TaskId carries the slot
// index (low 32 bits) and the slot's generation (high 32 bits), so lookup is
// O(1) with no hashing and a stale id never aliases a newer task. A slot whose
// generation is used up is retired, so ids are never reused in a process.
// Finished records are kept in a bounded retention ring. Not thread-safe: the
// supervisor's mutex guards it.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <atasker/detail/task_base.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task_info.hpp>

#include "core/run_policy.hpp"
#include "core/wall_clock.hpp"

namespace atasker::detail {

/// One task's record: 40 bytes. A name and an error, which most tasks lack,
/// live in the table's side storage (see TaskTable::name and error).
struct Record {
    std::uint32_t generation = 0;  // even: free; odd: in use
    TaskType type = TaskType::thread;
    std::uint8_t rank = 2;  // priority_rank() of the task's priority
    TaskStatus status = TaskStatus::queued;
    bool has_policy = false;  // the side storage holds its RunPolicy (TaskTable::policy)
    std::atomic<float> progress{0.0F};
    std::uint32_t extra = 0;  // 1 + index of the name and error in side storage; 0: none
    union {
        WallNanos queued = 0;
        std::uint32_t next_free;  // while free: the next free slot
    };
    union {
        WallNanos started = 0;
        TaskBase* queue_before;  // while queued: the task before it in its queue (Admission::push)
    };
    union {
        TaskBase* task = nullptr;  // until the task finishes: the supervisor's reference
        WallNanos completed;       // once it has finished (its status says which)
    };

    [[nodiscard]] bool in_use() const noexcept { return (generation & 1U) != 0; }
    [[nodiscard]] TaskBase* live_task() const noexcept { return is_finished(status) ? nullptr : task; }
    [[nodiscard]] WallNanos completed_at() const noexcept { return is_finished(status) ? completed : 0; }
    [[nodiscard]] WallNanos started_at() const noexcept {
        return status == TaskStatus::queued || status == TaskStatus::delayed ? 0 : started;
    }
};
static_assert(sizeof(Record) == 40, "a task record is 40 bytes: the memory target per queued task is 96");

class TaskTable {
public:
    TaskTable();

    /// Takes a free record (marked in use) and returns its id.
    [[nodiscard]] TaskId insert(Record*& record);
    /// Sets a free record aside for a put that will come without the lock
    /// (see reserved_ids.hpp) and returns the id it will have. Not in use,
    /// so neither found nor counted, and not touched, until publish().
    [[nodiscard]] TaskId reserve();
    /// Marks the record reserve() set aside for `id` in use.
    Record& publish(TaskId id) noexcept;
    /// Frees a record reserve() set aside; its id is never handed out.
    void unreserve(TaskId id) noexcept;
    [[nodiscard]] Record* find(TaskId id) noexcept;
    /// Frees the record of `id` at once, with no retention (a put undone).
    void erase(TaskId id) noexcept;
    [[nodiscard]] const Record* find(TaskId id) const noexcept;

    /// The record became finished: keep it per the retention limits.
    void finished(TaskId id, WallNanos now);
    /// Forgets finished records past the retention limits.
    void expire(WallNanos now);
    void set_retention(const RetentionOptions& retention, WallNanos now);
    [[nodiscard]] const RetentionOptions& retention() const noexcept { return retention_; }

    /// A task's name ("" when unnamed) and error (null when none), kept
    /// beside the records.
    void set_name(Record& r, std::string name);
    void set_error(Record& r, std::string error);
    [[nodiscard]] const std::string& name(const Record& r) const noexcept;
    /// Where a remote task runs: `worker` (host:pid), its `deliveries`-th
    /// worker host (1: the first).
    void set_worker(Record& r, std::string worker, unsigned deliveries);
    [[nodiscard]] const std::string* error(const Record& r) const noexcept;
    /// A task's retries and deadline, kept beside the records: set_policy()
    /// gives the record one; policy() is null for a record without.
    RunPolicy& set_policy(Record& r);
    [[nodiscard]] RunPolicy* policy(Record& r) noexcept {
        return r.has_policy ? &extras_[r.extra - 1].policy : nullptr;
    }
    [[nodiscard]] const RunPolicy* policy(const Record& r) const noexcept {
        return r.has_policy ? &extras_[r.extra - 1].policy : nullptr;
    }

    [[nodiscard]] TaskInfo snapshot(TaskId id, const Record& r) const;
    /// Calls fn(id, record) for every record in use.
    template <class F>
    void for_each(F&& fn) const {
        for (std::uint32_t i = 0; i < size_; ++i) {
            const Record& r = at(i);
            if (r.in_use()) fn(make_id(i, r.generation), r);
        }
    }
    [[nodiscard]] std::size_t in_use() const noexcept { return in_use_; }

private:
    static constexpr std::uint32_t chunk_bits = 12;
    static constexpr std::uint32_t chunk_size = 1U << chunk_bits;
    static constexpr std::uint32_t no_slot = ~0U;

    [[nodiscard]] static TaskId make_id(std::uint32_t index, std::uint32_t generation) noexcept {
        return (static_cast<TaskId>(generation) << 32) | index;
    }
    [[nodiscard]] Record& at(std::uint32_t i) noexcept { return chunks_[i >> chunk_bits][i & (chunk_size - 1)]; }
    [[nodiscard]] const Record& at(std::uint32_t i) const noexcept {
        return chunks_[i >> chunk_bits][i & (chunk_size - 1)];
    }
    struct Extra {
        std::string name;
        std::optional<std::string> error;
        RunPolicy policy;
        std::string worker;         // a remote task's worker host
        unsigned redeliveries = 0;  // a remote task's worker hosts before that one
    };
    void release(std::uint32_t index) noexcept;
    /// The record's side storage, taken on first use.
    [[nodiscard]] Extra& extra_of(Record& r);
    /// Forgets the oldest kept record.
    void drop_oldest() noexcept;

    // Chunks are raw memory; a record is constructed when its slot is first
    // used, so a chunk's untouched pages cost no resident memory.
    struct FreeChunk {
        void operator()(Record* p) const noexcept { ::operator delete(p); }
    };
    static_assert(std::is_trivially_destructible_v<Record>);
    std::vector<std::unique_ptr<Record[], FreeChunk>> chunks_;
    std::uint32_t size_ = 0;
    std::uint32_t free_head_ = no_slot;
    std::size_t in_use_ = 0;

    std::vector<Extra> extras_;
    std::vector<std::uint32_t> free_extras_;

    RetentionOptions retention_;
    // Finished records in completion order: a ring that grows up to
    // max_finished. Each entry carries its completion time, so expiry reads
    // the ring, not the (cold) record.
    struct Kept {
        TaskId id;
        WallNanos completed;
    };
    /// Entry `i` from the oldest, i < kept_.size(). A compare, not `%`: a
    /// finished task would otherwise pay two divisions here and in
    /// drop_oldest().
    [[nodiscard]] Kept& kept_at(std::size_t i) noexcept {
        const std::size_t at = kept_head_ + i;
        return kept_[at < kept_.size() ? at : at - kept_.size()];
    }

    std::vector<Kept> kept_;
    std::size_t kept_head_ = 0;
    std::size_t kept_count_ = 0;
};

}  // namespace atasker::detail
