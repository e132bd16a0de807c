#include <atasker/detail/task_base.hpp>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <atasker/error.hpp>

namespace atasker::detail {
namespace {

// Waiters park on one of a few mutex/condition pairs picked by the task's
// address, so a task costs a byte of state instead of its own pair.
struct Stripe {
    std::mutex mutex;
    std::condition_variable cv;
};
constexpr std::size_t stripe_count = 64;

Stripe& stripe_of(const void* p) noexcept {
    // Never destroyed: tasks end while the default supervisor stops at exit.
    static auto* stripes = new std::array<Stripe, stripe_count>;
    auto bits = reinterpret_cast<std::uintptr_t>(p);
    return (*stripes)[(bits >> 6) % stripe_count];
}

}  // namespace

TaskBase::~TaskBase() {
    if (has_error()) std::destroy_at(&error_);
}

void TaskBase::mark_done() noexcept {
    auto previous = state_.fetch_or(done_bit, std::memory_order_acq_rel);
    if ((previous & waiters_bit) != 0) {
        auto& s = stripe_of(this);
        std::lock_guard lock(s.mutex);
        s.cv.notify_all();
    }
}

void TaskBase::wait() const noexcept {
    if (is_done()) return;
    auto& s = stripe_of(this);
    std::unique_lock lock(s.mutex);
    state_.fetch_or(waiters_bit, std::memory_order_acq_rel);
    s.cv.wait(lock, [this] { return is_done(); });
}

bool TaskBase::wait_until(std::chrono::steady_clock::time_point deadline) const noexcept {
    if (is_done()) return true;
    auto& s = stripe_of(this);
    std::unique_lock lock(s.mutex);
    state_.fetch_or(waiters_bit, std::memory_order_acq_rel);
    return s.cv.wait_until(lock, deadline, [this] { return is_done(); });
}

std::string describe(const std::exception_ptr& e) {
    if (!e) return {};
    try {
        std::rethrow_exception(e);
    } catch (const RemoteError& ex) {
        return ex.type_name() + ": " + ex.what();
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown exception (not derived from std::exception)";
    }
}

}  // namespace atasker::detail
