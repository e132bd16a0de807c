#include "core/admission.hpp"

#include <algorithm>

#include "sync/saturating.hpp"

namespace atasker::detail {

void Admission::configure(const PoolOptions& o) noexcept {
    const std::size_t cap = o.capacity();
    const std::size_t low = o.pool_size == 0 ? unlimited : o.pool_size;
    const std::size_t normal = o.pool_size == 0 ? unlimited : saturating_add(low, o.reserve_normal);
    const std::size_t high = o.pool_size == 0 ? unlimited : saturating_add(normal, o.reserve_high);
    limits_ = {critical_unbounded_ ? unlimited : cap, std::min(high, cap), std::min(normal, cap), std::min(low, cap)};
}

TaskBase* Admission::push(TaskBase* task) noexcept {
    auto& q = queues_[task->rank];
    TaskBase* before = q.tail;
    task->next = nullptr;
    if (before != nullptr) {
        before->next = task;
    } else {
        q.head = task;
    }
    q.tail = task;
    ++q.count;
    return before;
}

TaskBase* Admission::remove(TaskBase* task, TaskBase* before) noexcept {
    auto& q = queues_[task->rank];
    // Tasks leave from the head (pop) or through here, so a back link goes
    // stale only once everything before its task has left: it is the head.
    if (q.head == task) before = nullptr;
    TaskBase* after = task->next;
    (before != nullptr ? before->next : q.head) = after;
    if (q.tail == task) q.tail = before;
    task->next = nullptr;
    --q.count;
    return after;
}

TaskBase* Admission::take_head(std::size_t rank) noexcept {
    auto& q = queues_[rank];
    TaskBase* t = q.head;
    q.head = t->next;
    if (q.head == nullptr) q.tail = nullptr;
    t->next = nullptr;
    --q.count;
    ++running_[rank];
    ++running_total_;
    return t;
}

TaskBase* Admission::pop() noexcept {
    for (std::size_t rank = 0; rank < queues_.size(); ++rank) {
        if (queues_[rank].head == nullptr) continue;
        // The most urgent waiting task decides: if it may not start, nothing
        // less urgent may either.
        if (places() >= limits_[rank]) return nullptr;
        return take_head(rank);
    }
    return nullptr;
}

TaskBase* Admission::pop_rider() noexcept {
    for (std::size_t rank = 0; rank < queues_.size(); ++rank) {
        if (queues_[rank].head == nullptr) continue;
        // Nothing jumps the line past it; and it rides only on a place its
        // priority could have taken (not a reserve kept for more urgent ones).
        if (!queues_[rank].head->may_ride() || places() > limits_[rank]) return nullptr;
        ++riding_;
        return take_head(rank);
    }
    return nullptr;
}

bool Admission::may_start(int rank) const noexcept {
    const auto r = static_cast<std::size_t>(rank);
    for (std::size_t k = 0; k <= r; ++k)
        if (queues_[k].head != nullptr) return false;
    return places() < limits_[r];
}

void Admission::start(int rank) noexcept {
    ++running_[static_cast<std::size_t>(rank)];
    ++running_total_;
}

std::size_t Admission::startable(std::size_t pending) const noexcept {
    std::size_t running = saturating_add(places(), pending);
    std::size_t n = 0;
    for (std::size_t rank = 0; rank < queues_.size(); ++rank) {
        const auto& q = queues_[rank];
        if (q.count == 0) continue;
        const std::size_t room = limits_[rank] > running ? limits_[rank] - running : 0;
        const std::size_t start = std::min(room, q.count);
        n += start;
        running += start;
        if (start < q.count) break;  // the rest of this rank waits, and so does everything less urgent
    }
    return n;
}

void Admission::finished(Priority p) noexcept {
    --running_[static_cast<std::size_t>(priority_rank(p))];
    --running_total_;
}

TaskBase* Admission::take_all() noexcept {
    TaskBase* head = nullptr;
    TaskBase** tail = &head;
    for (auto& q : queues_) {
        *tail = q.head;
        if (q.tail != nullptr) tail = &q.tail->next;
        q = Queue{};
    }
    return head;
}

std::size_t Admission::queued() const noexcept {
    std::size_t n = 0;
    for (const auto& q : queues_) n += q.count;
    return n;
}

std::array<std::size_t, priority_levels> Admission::queued_by_rank() const noexcept {
    std::array<std::size_t, priority_levels> out{};
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = queues_[i].count;
    return out;
}

}  // namespace atasker::detail
