#include "core/task_table.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <new>
#include <utility>

#include <atasker/error.hpp>

namespace atasker::detail {

TaskTable::TaskTable() = default;

TaskId TaskTable::insert(Record*& record) {
    const TaskId id = reserve();
    record = &publish(id);
    return id;
}

TaskId TaskTable::reserve() {
    std::uint32_t index = free_head_;
    if (index != no_slot) {
        free_head_ = at(index).next_free;
        at(index).queued = 0;
    } else {
        if (size_ == no_slot) throw Error("task table is full (2^32 live records); let tasks finish first");
        if ((size_ & (chunk_size - 1)) == 0) {
            // Owned before the vector grows: a growth that fails frees it.
            std::unique_ptr<Record[], FreeChunk> chunk(static_cast<Record*>(::operator new(chunk_size * sizeof(Record))));
            chunks_.push_back(std::move(chunk));
        }
        index = size_++;
        new (&at(index)) Record;
    }
    return make_id(index, at(index).generation + 1);
}

Record& TaskTable::publish(TaskId id) noexcept {
    Record& r = at(static_cast<std::uint32_t>(id & 0xFFFFFFFFU));
    ++r.generation;  // even -> odd: in use
    ++in_use_;
    return r;
}

void TaskTable::unreserve(TaskId id) noexcept {
    publish(id);
    release(static_cast<std::uint32_t>(id & 0xFFFFFFFFU));
}

Record* TaskTable::find(TaskId id) noexcept {
    const auto index = static_cast<std::uint32_t>(id & 0xFFFFFFFFU);
    const auto generation = static_cast<std::uint32_t>(id >> 32);
    if (index >= size_) return nullptr;
    Record& r = at(index);
    return (r.generation == generation && r.in_use()) ? &r : nullptr;
}

const Record* TaskTable::find(TaskId id) const noexcept { return const_cast<TaskTable*>(this)->find(id); }

void TaskTable::erase(TaskId id) noexcept {
    if (find(id) != nullptr) release(static_cast<std::uint32_t>(id & 0xFFFFFFFFU));
}

void TaskTable::release(std::uint32_t index) noexcept {
    Record& r = at(index);
    if (r.extra != 0) {
        Extra& e = extras_[r.extra - 1];
        e.name.clear();
        e.error.reset();
        e.policy = {};
        e.worker.clear();
        e.redeliveries = 0;
        free_extras_.push_back(r.extra - 1);
        r.extra = 0;
        r.has_policy = false;
    }
    r.status = TaskStatus::queued;
    r.task = nullptr;
    r.started = 0;
    r.progress.store(0.0F, std::memory_order_relaxed);
    ++r.generation;  // odd -> even: free
    --in_use_;
    // The last generation is never handed out again: ids stay unique.
    if (r.generation == 0xFFFFFFFEU) return;
    r.next_free = free_head_;
    free_head_ = index;
}

void TaskTable::finished(TaskId id, WallNanos now) {
    if (retention_.max_finished == 0 || retention_.max_age.count() <= 0) {
        release(static_cast<std::uint32_t>(id & 0xFFFFFFFFU));
        return;
    }
    if (kept_count_ == retention_.max_finished) drop_oldest();
    if (kept_count_ == kept_.size()) {
        // Grow the ring, unrolling it so the oldest entry comes first.
        std::vector<Kept> bigger;
        bigger.reserve(std::min(retention_.max_finished, std::max<std::size_t>(64, kept_.size() * 2)));
        for (std::size_t i = 0; i < kept_count_; ++i) bigger.push_back(kept_at(i));
        bigger.resize(bigger.capacity());
        kept_ = std::move(bigger);
        kept_head_ = 0;
    }
    kept_at(kept_count_) = Kept{id, now};
    ++kept_count_;
    expire(now);
}

void TaskTable::drop_oldest() noexcept {
    // A kept record is finished: nothing else frees it.
    release(static_cast<std::uint32_t>(kept_[kept_head_].id & 0xFFFFFFFFU));
    kept_head_ = kept_head_ + 1 < kept_.size() ? kept_head_ + 1 : 0;
    --kept_count_;
}

void TaskTable::expire(WallNanos now) {
    const WallNanos oldest_allowed = now - retention_.max_age.count();
    while (kept_count_ > 0 &&
           (kept_count_ > retention_.max_finished || kept_[kept_head_].completed < oldest_allowed))
        drop_oldest();
}

void TaskTable::set_retention(const RetentionOptions& retention, WallNanos now) {
    retention_ = retention;
    if (retention_.max_finished == 0 || retention_.max_age.count() <= 0) {
        retention_.max_finished = 0;
        while (kept_count_ > 0) drop_oldest();
        return;
    }
    expire(now);
}

TaskTable::Extra& TaskTable::extra_of(Record& r) {
    if (r.extra == 0) {
        if (free_extras_.empty()) {
            // release() is noexcept: its push_back must never reallocate.
            free_extras_.reserve(extras_.size() + 1);
            extras_.emplace_back();
            r.extra = static_cast<std::uint32_t>(extras_.size());
        } else {
            r.extra = free_extras_.back() + 1;
            free_extras_.pop_back();
        }
    }
    return extras_[r.extra - 1];
}

void TaskTable::set_name(Record& r, std::string name) {
    if (!name.empty()) extra_of(r).name = std::move(name);
}

void TaskTable::set_error(Record& r, std::string error) { extra_of(r).error = std::move(error); }

void TaskTable::set_worker(Record& r, std::string worker, unsigned deliveries) {
    Extra& e = extra_of(r);
    e.worker = std::move(worker);
    e.redeliveries = deliveries > 0 ? deliveries - 1 : 0;
}

RunPolicy& TaskTable::set_policy(Record& r) {
    RunPolicy& p = extra_of(r).policy;
    r.has_policy = true;
    return p;
}

const std::string& TaskTable::name(const Record& r) const noexcept {
    static const std::string unnamed;
    return r.extra != 0 ? extras_[r.extra - 1].name : unnamed;
}

const std::string* TaskTable::error(const Record& r) const noexcept {
    if (r.extra == 0) return nullptr;
    const auto& e = extras_[r.extra - 1].error;
    return e ? &*e : nullptr;
}

TaskInfo TaskTable::snapshot(TaskId id, const Record& r) const {
    auto to_time = [](WallNanos ns) { return SystemTime(std::chrono::duration_cast<SystemTime::duration>(std::chrono::nanoseconds(ns))); };
    TaskInfo info;
    info.id = id;
    info.name = name(r);
    info.type = r.type;
    info.priority = priority_of_rank(r.rank);
    info.status = r.status;
    info.time_queued = to_time(r.queued);
    if (r.started_at() != 0) info.time_started = to_time(r.started_at());
    if (r.completed_at() != 0) info.time_completed = to_time(r.completed_at());
    info.progress = r.progress.load(std::memory_order_relaxed);
    if (const std::string* e = error(r)) info.error = *e;
    // A run under way or ended counts; a task waiting to retry has only its failed ones.
    const RunPolicy* p = policy(r);
    info.attempts = (p != nullptr ? p->failed : 0U) + (r.started_at() != 0 ? 1U : 0U);
    if (r.extra != 0) {
        const Extra& e = extras_[r.extra - 1];
        info.worker = e.worker;
        info.attempts += e.redeliveries;
    }
    return info;
}

}  // namespace atasker::detail
