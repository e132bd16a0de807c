#include <atasker/detail/completion_order.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>

namespace atasker::detail {

struct CompletionOrder::State {
    struct Watch final : TaskWatcher {
        State* owner = nullptr;
        std::size_t index = 0;
        bool registered = false;  // the consumer's own: watch() took it, its end not yet seen
        void task_ended() noexcept override { owner->ended(index); }
    };

    explicit State(std::vector<const TaskBase*> t)
        : tasks(std::move(t)), watches(std::make_unique<Watch[]>(tasks.size())) {
        ended_list.reserve(tasks.size());  // ended() never allocates
    }

    /// A watched task ended (its watcher's reference is dropped here).
    void ended(std::size_t i) noexcept {
        bool wake = false;
        {
            std::lock_guard lock(mutex);
            ended_list.push_back(i);
            wake = waiting;
        }
        if (wake) cv.notify_one();
        release();
    }
    void release() noexcept {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    std::atomic<std::size_t> refs{1};  // the consumer's, and one per registered watcher
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::size_t> ended_list;  // positions, in the order their tasks ended
    std::size_t taken = 0;                // how many of them next() handed out
    bool waiting = false;                 // the consumer waits on cv
    std::vector<const TaskBase*> tasks;
    std::unique_ptr<Watch[]> watches;
};

CompletionOrder::CompletionOrder(std::vector<const TaskBase*> tasks)
    : state_(new State(std::move(tasks))), remaining_(state_->tasks.size()) {
    State& s = *state_;
    for (std::size_t i = 0; i < s.tasks.size(); ++i) {
        State::Watch& w = s.watches[i];
        w.owner = &s;
        w.index = i;
        s.refs.fetch_add(1, std::memory_order_relaxed);  // published by watch()'s lock
        if (s.tasks[i]->watch(w)) {
            w.registered = true;
        } else {  // already ended
            s.refs.fetch_sub(1, std::memory_order_relaxed);
            std::lock_guard lock(s.mutex);
            s.ended_list.push_back(i);
        }
    }
}

CompletionOrder::~CompletionOrder() {
    if (state_ == nullptr) return;  // moved from
    State& s = *state_;
    {
        // A watcher already told is off its task's list: nothing to take back.
        std::lock_guard lock(s.mutex);
        for (const std::size_t i : s.ended_list) s.watches[i].registered = false;
    }
    for (std::size_t i = 0; i < s.tasks.size(); ++i) {
        // unwatch() false: the task is ending on another thread, whose
        // task_ended() drops that watcher's reference itself.
        if (s.watches[i].registered && s.tasks[i]->unwatch(s.watches[i]))
            s.refs.fetch_sub(1, std::memory_order_relaxed);  // never the last: the consumer's is left
    }
    s.release();
}

std::optional<std::size_t> CompletionOrder::next(std::optional<std::chrono::steady_clock::time_point> deadline) {
    State& s = *state_;
    std::unique_lock lock(s.mutex);
    const auto ready = [&s] { return s.taken < s.ended_list.size(); };
    if (!ready()) {
        s.waiting = true;
        if (deadline) {
            if (!s.cv.wait_until(lock, *deadline, ready)) {
                s.waiting = false;
                return std::nullopt;
            }
        } else {
            s.cv.wait(lock, ready);
        }
        s.waiting = false;
    }
    --remaining_;
    return s.ended_list[s.taken++];
}

}  // namespace atasker::detail
