#pragma once
// ReservedIds: task ids whose records the task table has set aside
// (TaskTable::reserve), so a put that goes to the inbox (inbox.hpp) returns a
// valid id without the supervisor's mutex. The put does not touch the record:
// its time rides in the task (TaskBase::put_time), and the holder of the
// mutex that queues the task copies it into the record and publishes it,
// before anyone can look the id up: every reader takes the mutex, and taking
// it drains the inbox.
//
// A bounded ring (Vyukov's bounded queue, with one producer: the holder of
// the mutex) owned by the supervisor, not by threads: a thread that exits, or
// puts to another supervisor, leaves nothing behind, and the records set
// aside stay bounded. Refilling costs one step per id taken. The capacity
// covers a submitter that keeps putting while the mutex's holder is off its
// CPU for a while; with 32 ids, rounds of atasker-bench section 1 ran out of
// ids up to 800 times per 200k tasks, and each such put slept on the mutex.
//
// One hold of the mutex refills at most refill_limit ids: every id is a
// record to set aside, most often a cache miss, while the pool's threads wait
// for the mutex. A refill that went on until the ring was full ran on for as
// long as a submitter kept taking beside it (half the ids of a 1-submitter
// round were set aside in refills of more than 256); at most 256 per hold, 1
// submitter ran 0.63x the tasks per second it runs at 64, and without a
// limit, 0.65x (2 vCPUs, kvm-clock; 32 and 128 within the spread of 64).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include <atasker/priority.hpp>

namespace atasker::detail {

class ReservedIds {
public:
    static constexpr std::size_t capacity = 256;
    static constexpr std::size_t refill_limit = 64;

    ReservedIds() noexcept {
        for (std::size_t i = 0; i < capacity; ++i) cells_[i].sequence.store(i, std::memory_order_relaxed);
    }
    ReservedIds(const ReservedIds&) = delete;
    ReservedIds& operator=(const ReservedIds&) = delete;

    /// Lock-free: a reserved id, now the caller's (its record is not in use
    /// until TaskTable::publish), or 0 when none is left (the caller then
    /// puts under the mutex).
    [[nodiscard]] TaskId take() noexcept {
        std::size_t at = next_.load(std::memory_order_relaxed);
        for (;;) {
            Cell& cell = cells_[at % capacity];
            const auto ahead = static_cast<std::ptrdiff_t>(cell.sequence.load(std::memory_order_acquire) - (at + 1));
            if (ahead == 0) {  // filled for this turn
                if (next_.compare_exchange_weak(at, at + 1, std::memory_order_relaxed)) {
                    // The next take's cell, filled long ago: its line comes
                    // over while this put goes on (a hint only).
                    __builtin_prefetch(&cells_[(at + 1) % capacity], 1);
                    const TaskId taken = cell.id;
                    cell.sequence.store(at + capacity, std::memory_order_release);  // free for the next turn
                    return taken;
                }
            } else if (ahead < 0) {  // not filled yet, or its last taker has not let go: none left
                return 0;
            } else {  // another taker got there first
                at = next_.load(std::memory_order_relaxed);
            }
        }
    }

    /// With the mutex held: fills up to refill_limit free cells with fresh()
    /// ids. Stops, leaving cells empty, at the first fresh() that throws (no
    /// memory for records): puts then take the mutex, as they would anyway.
    template <class Fresh>
    void refill(Fresh&& fresh) noexcept {
        for (std::size_t n = 0; n < refill_limit; ++n) {
            Cell& cell = cells_[filled_ % capacity];
            if (cell.sequence.load(std::memory_order_acquire) != filled_) return;  // full
            try {
                cell.id = fresh();
            } catch (...) {
                return;
            }
            cell.sequence.store(filled_ + 1, std::memory_order_release);
            ++filled_;
        }
    }

private:
    // A cell's sequence says whose turn it is: `turn` while it waits to be
    // filled for the taker at `turn`, `turn + 1` once filled for it, and
    // `turn + capacity` once taken (waiting to be filled for the next lap).
    struct Cell {
        std::atomic<std::size_t> sequence{0};
        TaskId id = 0;
    };
    alignas(64) std::atomic<std::size_t> next_{0};  // the next take's turn
    alignas(64) std::size_t filled_ = 0;            // the next refill's turn; under the mutex
    std::array<Cell, capacity> cells_;
};

}  // namespace atasker::detail
