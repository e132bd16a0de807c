#include "core/timers.hpp"

#include <exception>
#include <utility>

#include <atasker/log.hpp>

#include "sync/system_error.hpp"

namespace atasker::detail {
namespace {

// The timers whose thread this is (null on any other thread).
thread_local const Timers* this_thread_timers = nullptr;

void call_logged(std::uint64_t id, const std::function<void()>& fn) noexcept {
    try {
        fn();
    } catch (const std::exception& e) {
        log(LogLevel::error, "scheduled call {} threw: {}", id, e.what());
    } catch (...) {
        log(LogLevel::error, "scheduled call {} threw a non-standard exception", id);
    }
}

}  // namespace

Timers::~Timers() { stop(); }

std::uint64_t Timers::schedule(Clock::time_point when, Callback callback, void* context, std::uint64_t argument) {
    std::lock_guard lock(mutex_);
    if (stopping_) return 0;
    return push_locked(when, callback, context, argument);
}

std::uint64_t Timers::schedule(Clock::time_point when, std::function<void()> fn) {
    std::unique_lock lock(mutex_);
    if (stopping_) return 0;
    // The function goes in first, under the id its entry will get: an entry
    // is never in the heap without it.
    const std::uint64_t id = sequence_ + 1;
    functions_.emplace(id, std::move(fn));
    try {
        return push_locked(when, nullptr, nullptr, 0);
    } catch (...) {
        auto dropped = functions_.extract(id);
        lock.unlock();  // its captures are destroyed without the lock
        throw;
    }
}

std::uint64_t Timers::push_locked(Clock::time_point when, Callback callback, void* context, std::uint64_t argument) {
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
    auto dropped = functions_.extract(id);
    lock.unlock();  // its captures are destroyed without the lock
    return true;
}

bool Timers::drop(std::uint64_t id) noexcept {
    std::unique_lock lock(mutex_);
    if (pending_.count(id) == 0) return false;
    try {
        canceled_.insert(id);
    } catch (...) {  // no memory to mark it: it comes up and is called
        return false;
    }
    pending_.erase(id);
    auto dropped = functions_.extract(id);
    lock.unlock();
    return true;
}

std::uint64_t Timers::running() const noexcept {
    // running_ is written by the timer thread only: it reads it unlocked.
    return this_thread_timers == this ? running_ : 0;
}

void Timers::start() {
    std::lock_guard lock(mutex_);
    if (stopping_ || thread_.joinable()) return;
    thread_ = start_thread("the timer", [this] { loop(); });
}

void Timers::stop() {
    std::thread t;
    Functions dropped;  // destroyed last, without the lock
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        heap_ = {};
        pending_.clear();
        canceled_.clear();
        dropped.swap(functions_);
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
    this_thread_timers = this;
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
        Functions::node_type owned;
        if (e.callback == nullptr) owned = functions_.extract(e.sequence);
        running_ = e.sequence;
        lock.unlock();
        if (e.callback != nullptr) {
            e.callback(e.context, e.argument);
        } else if (!owned.empty()) {  // empty only when schedule() failed after pushing
            call_logged(e.sequence, owned.mapped());
            // Destroyed while still running_: once cancel() returns, nothing
            // of the call is left.
            owned = {};
        }
        lock.lock();
        running_ = 0;
        ran_.notify_all();
    }
}

}  // namespace atasker::detail
