#include "fiber/fiber_wait.hpp"

#include <atomic>

#include <boost/fiber/future.hpp>

#include <atasker/detail/task_base.hpp>

namespace atasker::detail {
namespace {

/// Told when the task ends; fulfils the promise the waiting fiber waits on.
/// Owned by both sides, and freed by whichever lets go last: the ending
/// thread may still be inside set_value() when the fiber it woke has
/// already returned.
class Wake final : public TaskWatcher {
public:
    Wake() = default;
    Wake(const Wake&) = delete;
    Wake& operator=(const Wake&) = delete;
    ~Wake() = default;

    [[nodiscard]] boost::fibers::future<void> ended() { return promise_.get_future(); }

    void task_ended() noexcept override {
        promise_.set_value();
        release();
    }

    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

private:
    boost::fibers::promise<void> promise_;
    std::atomic<int> refs_{2};  // the waiting fiber's and the ending thread's
};

}  // namespace

std::optional<bool> FiberWait::wait_until(const TaskBase& task,
                                          const std::chrono::steady_clock::time_point* deadline) noexcept {
    Wake* wake = nullptr;
    boost::fibers::future<void> ended;
    try {
        wake = new Wake;
        ended = wake->ended();
    } catch (...) {
        delete wake;
        return std::nullopt;  // no memory: the caller blocks the thread instead
    }
    if (!task.watch(*wake)) {
        delete wake;  // it ended meanwhile, and will never tell `wake`
        return true;
    }
    bool told = true;
    if (deadline == nullptr) {
        ended.wait();
    } else {
        told = ended.wait_until(*deadline) == boost::fibers::future_status::ready;
    }
    // Taken back in time, it will never be told: the ending thread's share
    // is released here too. Otherwise it has been told or is being told.
    if (!told && task.unwatch(*wake)) wake->release();
    wake->release();
    return told || task.is_done();
}

}  // namespace atasker::detail
