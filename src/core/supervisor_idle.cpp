// wait_idle(): waits for the moment nothing is queued, delayed, running or
// being settled. Nothing polls: what ends the last piece of work tells the
// waiters (a lane whose runners all came back, a settle off the lanes).

#include <algorithm>
#include <mutex>

#include <atasker/error.hpp>

#include "core/supervisor_impl.hpp"

namespace atasker {

bool TaskSupervisor::Impl::idle() const noexcept {
    // A lane's runner counts as busy until it has settled its last task
    // (woken its waiters, run its callback): idle means every task put
    // before has ended in every way a caller can see.
    return delayed == 0 && settling.load(std::memory_order_seq_cst) == 0 &&
           std::all_of(lanes.begin(), lanes.end(), [](const auto& l) {
               return l->admission().running() == 0 && l->admission().queued() == 0 && !l->busy();
           });
}

void TaskSupervisor::Impl::notify_if_idle() noexcept {
    if (idle_waiters.load(std::memory_order_relaxed) != 0 && idle()) state_cv.notify_all();
}

void TaskSupervisor::Impl::end_settle() noexcept {
    // Sequentially consistent with wait_idle(), which counts itself in
    // idle_waiters and then reads `settling`: one of the two sees the other.
    if (settling.fetch_sub(1, std::memory_order_seq_cst) != 1) return;
    if (idle_waiters.load(std::memory_order_seq_cst) == 0) return;
    std::lock_guard lock(mutex);
    notify_if_idle();
}

bool TaskSupervisor::Impl::wait_idle(std::optional<std::chrono::nanoseconds> timeout) {
    if (on_own_thread())
        throw Error("wait_idle() waits for every running task, and it was called from one of this supervisor's own "
                    "tasks (or a completion callback), which would wait for itself; call it from another thread");
    std::unique_lock lock(mutex);
    idle_waiters.fetch_add(1, std::memory_order_seq_cst);
    struct Leave {
        std::atomic<std::size_t>& waiters;
        ~Leave() { waiters.fetch_sub(1, std::memory_order_relaxed); }
    } leave{idle_waiters};
    // Tasks put through the inbox are queued first: a put that returned
    // before this call is waited for.
    const auto is_idle = [this] {
        mutex.drain_inbox();
        return idle();
    };
    if (!timeout) {
        state_cv.wait(lock, is_idle);
        return true;
    }
    return state_cv.wait_for(lock, *timeout, is_idle);
}

void TaskSupervisor::wait_idle() { (void)impl_->wait_idle(std::nullopt); }

bool TaskSupervisor::wait_idle(std::chrono::nanoseconds timeout) { return impl_->wait_idle(timeout); }

}  // namespace atasker
