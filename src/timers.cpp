#include "timers.hpp"

namespace atasker::detail {

Timers::~Timers() { stop(); }

void Timers::schedule(Clock::time_point when, Callback callback, void* context, std::uint64_t argument) {
    std::lock_guard lock(mutex_);
    const bool earliest = heap_.empty() || when < heap_.top().when;
    heap_.push(Entry{when, sequence_++, callback, context, argument});
    if (!thread_.joinable()) {
        stopping_ = false;
        thread_ = std::thread([this] { loop(); });
    } else if (earliest) {
        cv_.notify_one();
    }
}

void Timers::stop() {
    std::thread t;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        heap_ = {};
        t = std::move(thread_);
    }
    cv_.notify_one();
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
    if (t.joinable()) t.detach();  // stop() from a timer callback: the loop exits on its own
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
        lock.unlock();
        e.callback(e.context, e.argument);
        lock.lock();
    }
}

}  // namespace atasker::detail
