#include "core/timers.hpp"

#include "sync/system_error.hpp"

namespace atasker::detail {

Timers::~Timers() { stop(); }

std::uint64_t Timers::schedule(Clock::time_point when, Callback callback, void* context, std::uint64_t argument) {
    std::lock_guard lock(mutex_);
    if (stopping_) return 0;
    // Started before the entry goes in: a refused thread leaves nothing behind.
    const bool started = !thread_.joinable();
    if (started) thread_ = start_thread("the timer", [this] { loop(); });
    const bool earliest = heap_.empty() || when < heap_.top().when;
    const std::uint64_t id = ++sequence_;
    heap_.push(Entry{when, id, callback, context, argument});
    pending_.insert(id);
    if (!started && earliest) cv_.notify_one();
    return id;
}

bool Timers::cancel(std::uint64_t id) {
    std::unique_lock lock(mutex_);
    if (running_ == id) {
        if (thread_.get_id() != std::this_thread::get_id()) ran_.wait(lock, [&] { return running_ != id; });
        return false;
    }
    // A priority_queue cannot remove from the middle: drop the entry when it
    // comes up.
    if (pending_.erase(id) == 0) return false;
    canceled_.insert(id);
    return true;
}

void Timers::stop() {
    std::thread t;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        heap_ = {};
        pending_.clear();
        canceled_.clear();
        t = std::move(thread_);
    }
    cv_.notify_one();
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
    if (t.joinable()) t.detach();  // stop() from a timer callback: the loop exits on its own
}

void Timers::resume() {
    std::lock_guard lock(mutex_);
    stopping_ = false;
}

std::size_t Timers::pending() const {
    std::lock_guard lock(mutex_);
    return heap_.size();
}

void Timers::loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (heap_.empty()) {
            cv_.wait(lock);
            continue;
        }
        const auto when = heap_.top().when;
        if (Clock::now() < when) {
            cv_.wait_until(lock, when);
            continue;
        }
        const Entry e = heap_.top();
        heap_.pop();
        if (canceled_.erase(e.sequence) != 0) continue;
        pending_.erase(e.sequence);
        running_ = e.sequence;
        lock.unlock();
        e.callback(e.context, e.argument);
        lock.lock();
        running_ = 0;
        ran_.notify_all();
    }
}

}  // namespace atasker::detail
