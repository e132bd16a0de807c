#pragma once
// LoopScheduler: the Boost.Fiber scheduling algorithm of an aloop. Round
// robin, like boost::fibers::algo::round_robin, but its thread sleeps on a
// Doorbell instead of a condition variable: other threads ring it to hand the
// loop a fiber, and worker processes ring it when a direct call's answer is
// in (see direct_calls.hpp). Before sleeping, and each time it picks a fiber,
// it looks whether an answer arrived and readies the loop's server fiber, and
// whether a thread posted to the loop and readies the fiber parked for that.

#include <atomic>
#include <chrono>
#include <memory>

#include <boost/fiber/algo/algorithm.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/scheduler.hpp>

#include "fiber/direct_calls.hpp"

namespace atasker::detail {

/// A fiber of the loop that waits for other threads to post to it, woken
/// through the loop's doorbell alone. Posting touches no Boost.Fiber state
/// of the posting thread, whose own fiber context may already be gone (a
/// thread-local, destroyed before the static objects that stop aloops at
/// exit).
class ParkedFiber {
public:
    /// Any thread, after publishing what it posts.
    void post(Doorbell& bell) noexcept {
        posted_.store(true, std::memory_order_seq_cst);
        ring(bell);
    }
    /// The fiber itself, before it looks at what was posted.
    void clear() noexcept { posted_.store(false, std::memory_order_seq_cst); }
    /// The fiber itself, having found nothing: suspends until a post.
    void park() noexcept {
        parked_ = boost::fibers::context::active();
        parked_->suspend();
    }
    /// The scheduler: the parked fiber, once a post came for it.
    [[nodiscard]] boost::fibers::context* wake() noexcept {
        if (parked_ == nullptr || !posted_.load(std::memory_order_seq_cst)) return nullptr;
        return std::exchange(parked_, nullptr);
    }

private:
    std::atomic<bool> posted_{false};
    boost::fibers::context* parked_ = nullptr;  // the loop's thread only
};

class LoopScheduler final : public boost::fibers::algo::algorithm {
public:
    LoopScheduler(std::shared_ptr<DirectCalls> calls, ParkedFiber& inbox) noexcept
        : calls_(std::move(calls)), inbox_(inbox) {}

    void awakened(boost::fibers::context* ctx) noexcept override { ctx->ready_link(ready_); }

    boost::fibers::context* pick_next() noexcept override {
        wake_parked();
        if (ready_.empty()) return nullptr;
        boost::fibers::context* ctx = &ready_.front();
        ready_.pop_front();
        return ctx;
    }

    [[nodiscard]] bool has_ready_fibers() const noexcept override { return !ready_.empty(); }

    void suspend_until(const std::chrono::steady_clock::time_point& until) noexcept override {
        Doorbell& bell = calls_->bell();
        const std::uint32_t seen = bell.rings.load(std::memory_order_seq_cst);
        if (wake_parked()) return;  // an answer or a post arrived before the ring was read
        sleep_on(bell, seen, until);
    }

    void notify() noexcept override { ring(calls_->bell()); }

private:
    bool wake_parked() noexcept {
        bool woke = false;
        for (boost::fibers::context* ctx : {calls_->wake_server(), inbox_.wake()}) {
            if (ctx == nullptr) continue;
            ctx->ready_link(ready_);
            woke = true;
        }
        return woke;
    }

    boost::fibers::scheduler::ready_queue_type ready_{};
    std::shared_ptr<DirectCalls> calls_;
    ParkedFiber& inbox_;
};

}  // namespace atasker::detail
