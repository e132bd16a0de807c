#pragma once
// LoopScheduler: the Boost.Fiber scheduling algorithm of an aloop. Round
// robin, like boost::fibers::algo::round_robin, but its thread sleeps on a
// Doorbell instead of a condition variable: other threads ring it to hand the
// loop a fiber, and worker processes ring it when a direct call's answer is
// in (see direct_calls.hpp). Before sleeping, and each time it picks a fiber,
// it looks whether an answer arrived and readies the loop's server fiber.

#include <chrono>
#include <memory>

#include <boost/fiber/algo/algorithm.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/scheduler.hpp>

#include "direct_calls.hpp"

namespace atasker::detail {

class LoopScheduler final : public boost::fibers::algo::algorithm {
public:
    explicit LoopScheduler(std::shared_ptr<DirectCalls> calls) noexcept : calls_(std::move(calls)) {}

    void awakened(boost::fibers::context* ctx) noexcept override { ctx->ready_link(ready_); }

    boost::fibers::context* pick_next() noexcept override {
        wake_server();
        if (ready_.empty()) return nullptr;
        boost::fibers::context* ctx = &ready_.front();
        ready_.pop_front();
        return ctx;
    }

    [[nodiscard]] bool has_ready_fibers() const noexcept override { return !ready_.empty(); }

    void suspend_until(const std::chrono::steady_clock::time_point& until) noexcept override {
        Doorbell& bell = calls_->bell();
        const std::uint32_t seen = bell.rings.load(std::memory_order_seq_cst);
        if (wake_server()) return;  // an answer arrived before the ring was read
        sleep_on(bell, seen, until);
    }

    void notify() noexcept override { ring(calls_->bell()); }

private:
    bool wake_server() noexcept {
        boost::fibers::context* server = calls_->wake_server();
        if (server == nullptr) return false;
        server->ready_link(ready_);
        return true;
    }

    boost::fibers::scheduler::ready_queue_type ready_{};
    std::shared_ptr<DirectCalls> calls_;
};

}  // namespace atasker::detail
