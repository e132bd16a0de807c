#pragma once
// Admission: which queued task of a pool may start now. Written once for the
// thread pool and the process pool (API.md, "Admission"). Not thread-safe:
// the supervisor's mutex guards it.

#include <array>
#include <cstddef>

#include <atasker/detail/task_base.hpp>
#include <atasker/pool_options.hpp>

namespace atasker::detail {

class Admission {
public:
    /// critical_unbounded: critical tasks start whatever the load (threads);
    /// otherwise they only jump the line (processes).
    explicit Admission(bool critical_unbounded) noexcept : critical_unbounded_(critical_unbounded) {}

    void configure(const PoolOptions& options) noexcept;

    /// Appends `task` to its priority's queue (FIFO within a priority) and
    /// returns the task before it (nullptr when it is first). The queue links
    /// forward only; the caller keeps that back link (the task's record), so
    /// that remove() costs O(1) however long the queue is.
    [[nodiscard]] TaskBase* push(TaskBase* task) noexcept;
    /// Unlinks a queued task (cancellation) in O(1). `before`: the back link
    /// push() returned, kept up to date (it may be stale only while `task` is
    /// the head of its queue, which is tested first). Returns the task that
    /// followed it, whose back link becomes `before`, or nullptr.
    TaskBase* remove(TaskBase* task, TaskBase* before) noexcept;
    /// Takes the next task that may start now, counting it as running, or nullptr.
    [[nodiscard]] TaskBase* pop() noexcept;
    /// Takes the next queued task in line if it may_ride() and its priority
    /// could have had the place of the task pop() just took: it rides with
    /// that task (one request, one worker, run after it). A rider counts as
    /// running but holds no place of its own: the limits count places.
    /// nullptr when the next task may not ride.
    [[nodiscard]] TaskBase* pop_rider() noexcept;
    /// A rider is over (before finished() or a requeue's finished()).
    void rider_ended() noexcept { --riding_; }
    /// Whether a task of priority rank `rank`, never queued, may start now:
    /// nothing as urgent waits before it, and its priority's limit leaves
    /// room. Such a task pop() would take at once if it were queued.
    [[nodiscard]] bool may_start(int rank) const noexcept;
    /// Counts a task that may_start() as running, without queueing it.
    void start(int rank) noexcept;
    /// How many queued tasks could start if `pending` more tasks were running.
    [[nodiscard]] std::size_t startable(std::size_t pending) const noexcept;
    /// A running task of priority `p` ended.
    void finished(Priority p) noexcept;
    /// Takes every queued task (stop with cancellation), as a linked list.
    [[nodiscard]] TaskBase* take_all() noexcept;

    /// Running tasks, riders included.
    [[nodiscard]] std::size_t running() const noexcept { return running_total_; }
    [[nodiscard]] std::size_t queued() const noexcept;
    [[nodiscard]] bool critical_waiting() const noexcept { return queues_[0].head != nullptr; }
    [[nodiscard]] std::array<std::size_t, priority_levels> queued_by_rank() const noexcept;
    [[nodiscard]] const std::array<std::size_t, priority_levels>& running_by_rank() const noexcept {
        return running_;
    }

private:
    struct Queue {
        TaskBase* head = nullptr;
        TaskBase* tail = nullptr;
        std::size_t count = 0;
    };
    [[nodiscard]] std::size_t limit(int rank) const noexcept { return limits_[static_cast<std::size_t>(rank)]; }
    /// Places taken: running tasks that are not riders.
    [[nodiscard]] std::size_t places() const noexcept { return running_total_ - riding_; }
    TaskBase* take_head(std::size_t rank) noexcept;

    bool critical_unbounded_;
    std::array<Queue, priority_levels> queues_{};
    std::array<std::size_t, priority_levels> limits_{};
    std::array<std::size_t, priority_levels> running_{};
    std::size_t running_total_ = 0;
    std::size_t riding_ = 0;  // of running_total_
};

}  // namespace atasker::detail
