#include "admission.hpp"

#include <algorithm>

#include "saturating.hpp"

namespace atasker::detail {

void Admission::configure(const PoolOptions& o) noexcept {
    const std::size_t cap = o.capacity();
    const std::size_t low = o.pool_size == 0 ? unlimited : o.pool_size;
    const std::size_t normal = o.pool_size == 0 ? unlimited : saturating_add(low, o.reserve_normal);
    const std::size_t high = o.pool_size == 0 ? unlimited : saturating_add(normal, o.reserve_high);
    limits_ = {critical_unbounded_ ? unlimited : cap, std::min(high, cap), std::min(normal, cap), std::min(low, cap)};
}

void Admission::push(TaskBase* task) noexcept {
    auto& q = queues_[task->rank];
    task->next = nullptr;
    if (q.tail != nullptr) {
        q.tail->next = task;
    } else {
        q.head = task;
    }
    q.tail = task;
    ++q.count;
}

bool Admission::remove(TaskBase* task) noexcept {
    // Linear in the queue's length: cancellation of a queued task is rare,
    // and a doubly linked queue would cost every task 8 more bytes.
    auto& q = queues_[task->rank];
    TaskBase* prev = nullptr;
    for (TaskBase* t = q.head; t != nullptr; prev = t, t = t->next) {
        if (t != task) continue;
        (prev != nullptr ? prev->next : q.head) = t->next;
        if (q.tail == t) q.tail = prev;
        t->next = nullptr;
        --q.count;
        return true;
    }
    return false;
}

TaskBase* Admission::pop() noexcept {
    for (std::size_t rank = 0; rank < queues_.size(); ++rank) {
        auto& q = queues_[rank];
        if (q.head == nullptr) continue;
        // The most urgent waiting task decides: if it may not start, nothing
        // less urgent may either.
        if (running_total_ >= limits_[rank]) return nullptr;
        TaskBase* t = q.head;
        q.head = t->next;
        if (q.head == nullptr) q.tail = nullptr;
        t->next = nullptr;
        --q.count;
        ++running_[rank];
        ++running_total_;
        return t;
    }
    return nullptr;
}

std::size_t Admission::startable(std::size_t pending) const noexcept {
    std::size_t running = saturating_add(running_total_, pending);
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
