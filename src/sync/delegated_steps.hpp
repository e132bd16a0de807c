#pragma once
// DelegatedSteps: work that threads need done under one mutex, left to the
// mutex's holder when they find it held (flat combining). A thread whose
// try_lock fails pushes its step and sleeps on a word of its own. A holder
// that leaves steps itself runs the steps left before it lets go of the
// mutex (run_all()) and wakes their owners once it has (done()): what the
// mutex guards then stays on its CPU instead of changing hands between CPUs
// for every step, and the owner never takes the mutex after waiting for it.
// Any other holder runs none (it may be inside a condition variable's wait,
// where a step that notifies that variable would deadlock): once it has let
// go, it hands the steps back (hand_back()), and each owner takes the mutex
// and runs its own, as it would have without the list.
//
// The owner does not spin: where threads outnumber CPUs (submitters beside
// the pool's threads), a spinning owner takes a CPU from the thread it waits
// for or from a submitter. 1 submitter, 2 vCPUs: owners that looked for ~1 us
// before sleeping ran 1.0M tasks/s where owners that slept at once ran 1.3M.
//
// Why: two pool threads ending tiny tasks took the supervisor's mutex in
// turns, each taking it, and the records and queues it guards, from the
// other's CPU, and often sleeping on it; with 4 submitters on 2 vCPUs, once
// the submitters were done, the two ran the queued tasks at 0.9M/s in some
// rounds and at 7M/s in others (atasker-bench section 1; docs/results.md).
//
// A step is run once: the thread that takes it off the list runs it under
// the mutex, oldest first, or hands it back. The thread that pushed it tries
// the mutex once more after pushing, so a holder that let go before the
// push cannot leave it.

#include <atomic>
#include <cstdint>

#include "sync/futex.hpp"
#include "sync/reversed_list.hpp"

namespace atasker::detail {

class DelegatedStep {
public:
    /// With the mutex held, on the owner's thread or the holder's.
    virtual void run() noexcept = 0;

protected:
    DelegatedStep() noexcept = default;
    DelegatedStep(const DelegatedStep&) = delete;
    DelegatedStep& operator=(const DelegatedStep&) = delete;
    ~DelegatedStep() = default;

private:
    friend class DelegatedSteps;
    static constexpr std::uint32_t waiting = 0;
    static constexpr std::uint32_t ran = 1;
    static constexpr std::uint32_t asleep = 2;  // its owner sleeps on state_: wake it
    static constexpr std::uint32_t handed_back = 3;  // its owner runs it
    DelegatedStep* next_ = nullptr;
    std::atomic<std::uint32_t> state_{waiting};
};

class DelegatedSteps {
public:
    /// Without the mutex, after a failed try_lock: leaves `step` for the
    /// holder. Then the caller tries the mutex once more (the holder may have
    /// let go before it saw the step), and wait()s.
    void push(DelegatedStep& step) noexcept {
        step.state_.store(DelegatedStep::waiting, std::memory_order_relaxed);
        DelegatedStep* head = head_.load(std::memory_order_relaxed);
        do {
            step.next_ = head;
        } while (!head_.compare_exchange_weak(head, &step, std::memory_order_release, std::memory_order_relaxed));
    }

    [[nodiscard]] bool empty() const noexcept { return head_.load(std::memory_order_relaxed) == nullptr; }

    /// With the mutex held: runs every step left, oldest first. Returns them,
    /// for done() once the mutex is released.
    [[nodiscard]] DelegatedStep* run_all() noexcept {
        if (empty()) return nullptr;
        DelegatedStep* oldest = reversed(head_.exchange(nullptr, std::memory_order_acquire),
                                         [](DelegatedStep* s) -> DelegatedStep*& { return s->next_; });
        for (DelegatedStep* s = oldest; s != nullptr; s = s->next_) s->run();
        return oldest;
    }

    /// After the mutex is released: tells the owners of the steps run_all()
    /// ran that they did (each owner may return, and its step go, at once).
    static void done(DelegatedStep* ran) noexcept { tell(ran, DelegatedStep::ran); }

    /// After the mutex is released: hands every step left back to its
    /// owner, which runs it itself.
    void hand_back() noexcept { tell(head_.exchange(nullptr, std::memory_order_acquire), DelegatedStep::handed_back); }

    /// The owner: sleeps until its step ran (true) or was handed back (false).
    [[nodiscard]] static bool wait(DelegatedStep& step) noexcept {
        std::uint32_t seen = DelegatedStep::waiting;
        if (step.state_.compare_exchange_strong(seen, DelegatedStep::asleep, std::memory_order_acquire)) {
            do {
                futex_wait(step.state_, DelegatedStep::asleep);
                seen = step.state_.load(std::memory_order_acquire);
            } while (seen == DelegatedStep::asleep);
        }
        return seen == DelegatedStep::ran;
    }

private:
    /// Sets each step's state to `state` (ran, handed back), waking its owner
    /// if it sleeps; a step is its owner's again once told.
    static void tell(DelegatedStep* s, std::uint32_t state) noexcept {
        while (s != nullptr) {
            DelegatedStep* next = s->next_;
            if (s->state_.exchange(state, std::memory_order_release) == DelegatedStep::asleep) futex_wake(s->state_);
            s = next;
        }
    }

    alignas(64) std::atomic<DelegatedStep*> head_{nullptr};  // the newest step left
};

}  // namespace atasker::detail
