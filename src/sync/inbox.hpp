#pragma once
// Inbox: the tasks of puts that do not take the supervisor's mutex. Such a
// put pushes its task here with one compare-and-swap and returns, instead of
// taking the mutex from, or sleeping on it behind, a pool thread; a holder of
// the mutex queues the task (see supervisor_mutex.hpp). Closed while the
// supervisor is stopped: a push then fails, so no task is left in an inbox
// nobody drains. Tasks are linked through TaskBase::next.

#include <atomic>
#include <cstdint>

#include <atasker/detail/task_base.hpp>

#include "sync/reversed_list.hpp"

namespace atasker::detail {

class Inbox {
public:
    /// Lock-free. False when closed: the caller puts under the mutex instead.
    [[nodiscard]] bool push(TaskBase* task) noexcept {
        std::uintptr_t head = head_.load(std::memory_order_relaxed);
        do {
            if (head == closed) return false;
            task->next = reinterpret_cast<TaskBase*>(head);  // NOLINT
        } while (!head_.compare_exchange_weak(head, reinterpret_cast<std::uintptr_t>(task), std::memory_order_release,
                                              std::memory_order_relaxed));
        return true;
    }
    /// Without the mutex, by a thread about to take it: starts bringing the
    /// newest task's cache line over, which take() writes (a hint only).
    void prefetch() const noexcept {
        const std::uintptr_t head = head_.load(std::memory_order_relaxed);
        if (head != 0 && head != closed) __builtin_prefetch(reinterpret_cast<const void*>(head), 1);  // NOLINT
    }
    [[nodiscard]] bool empty() const noexcept {
        const std::uintptr_t head = head_.load(std::memory_order_relaxed);
        return head == 0 || head == closed;
    }
    /// With the mutex held: empties the inbox and returns its tasks, oldest
    /// first (null when none).
    [[nodiscard]] TaskBase* take() noexcept {
        return empty() ? nullptr : oldest_first(head_.exchange(0, std::memory_order_acquire));
    }
    /// With the mutex held: closes the inbox and returns what it held, oldest first.
    [[nodiscard]] TaskBase* close() noexcept { return oldest_first(head_.exchange(closed, std::memory_order_acquire)); }
    /// With the mutex held: opens a closed inbox (an open one is left as it is).
    void open() noexcept {
        std::uintptr_t expected = closed;
        head_.compare_exchange_strong(expected, 0, std::memory_order_relaxed);
    }

private:
    static constexpr std::uintptr_t closed = 1;  // never a task's address

    [[nodiscard]] static TaskBase* oldest_first(std::uintptr_t head) noexcept {
        if (head == closed) return nullptr;
        return reversed(reinterpret_cast<TaskBase*>(head),  // NOLINT
                        [](TaskBase* t) -> TaskBase*& { return t->next; });
    }

    std::atomic<std::uintptr_t> head_{closed};
};

}  // namespace atasker::detail
