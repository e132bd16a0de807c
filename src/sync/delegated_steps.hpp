#pragma once
// DelegatedSteps: work that threads need done under one mutex, left to the
// mutex's holder when they find it held (flat combining). A thread whose
// try_lock fails pushes its step and waits on a word of its own. A holder
// that leaves steps itself runs the steps left before it lets go of the
// mutex (run_all()) and wakes their owners once it has (done()): what the
// mutex guards then stays on its CPU instead of changing hands between CPUs
// for every step, and the owner never takes the mutex after waiting for it.
// Any other holder runs none (it may be inside a condition variable's wait,
// where a step that notifies that variable would deadlock): once it has let
// go, it hands the steps back (hand_back()), and each owner takes the mutex
// and runs its own, as it would have without the list.
//
// The owner looks at its step for up to spin_before_sleep before it sleeps:
// the holder is mid-step and runs it within a few hundred nanoseconds, and a
// sleep costs more than that twice over (the owner's futex wait, the
// holder's futex wake, the wake-up of an idle vCPU). atasker-bench section
// 1, 2 vCPUs (AMD EPYC VM), eight interleaved runs against owners that slept
// at once: 1 submitter 1.32x the tasks per second (7 of 8), 4 submitters
// 1.08x (5 of 8, within the spread), everything on CPU 0 1.05x. The look is
// bounded in time, not in pauses, whose length differs tenfold between CPUs,
// and short: beside submitters, a looking owner holds a CPU that one needs
// (a driver, 1 submitter, in the same runs: ~2.5 us 1.08x, ~0.6 us 1.32x;
// ~0.3 us no gain).
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
#include <chrono>
#include <cstdint>

#include "sync/futex.hpp"
#include "sync/reversed_list.hpp"
#include "sync/spin_pause.hpp"

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

    /// How long an owner looks at its step before it sleeps.
    static constexpr std::chrono::nanoseconds spin_before_sleep{800};

    /// The owner: waits until its step ran (true) or was handed back (false).
    [[nodiscard]] static bool wait(DelegatedStep& step) noexcept {
        // The clock is read only where the holder has not run the step yet.
        if (step.state_.load(std::memory_order_relaxed) == DelegatedStep::waiting) {
            const auto give_up = std::chrono::steady_clock::now() + spin_before_sleep;
            do {
                for (int i = 0; i < 4; ++i) spin_pause();
            } while (step.state_.load(std::memory_order_relaxed) == DelegatedStep::waiting &&
                     std::chrono::steady_clock::now() < give_up);
        }
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
