// The inbox of puts that do not take the supervisor's mutex: the lock-free
// stack (Inbox), the ids reserved for such puts (ReservedIds), and the mutex
// that drains the inbox (SupervisorMutex), with the steps pool threads leave
// to its holder (DelegatedSteps). Private headers, tested directly; the
// supervisor's behaviour through them is in supervisor_test.cpp.

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <deque>
#include <future>
#include <latch>
#include <set>
#include <string>
#include <string_view>
#include <stdexcept>
#include <thread>
#include <vector>

#include <unistd.h>

#include "sync/inbox.hpp"
#include "core/reserved_ids.hpp"
#include "core/supervisor_mutex.hpp"
#include "test_support.hpp"

namespace {

using atasker::TaskId;
using atasker::detail::DelegatedStep;
using atasker::detail::Inbox;
using atasker::detail::ReservedIds;
using atasker::detail::SupervisorMutex;
using atasker::detail::TaskBase;

struct Dummy final : TaskBase {
    explicit Dummy(TaskId task_id = 0) { id = task_id; }
    void run(const atasker::detail::RunContext&) noexcept override {}
};

std::vector<TaskBase*> to_vector(TaskBase* oldest) {
    std::vector<TaskBase*> out;
    for (TaskBase* t = oldest; t != nullptr; t = t->next) out.push_back(t);
    return out;
}

/// Records what the mutex asks of its host.
struct FakeHost final : SupervisorMutex::Host {
    std::vector<TaskBase*> queued;
    bool is_hungry = true;
    void queue_from_inbox(TaskBase* oldest) noexcept override {
        for (TaskBase* t : to_vector(oldest)) queued.push_back(t);
    }
    bool hungry() const noexcept override { return is_hungry; }
};

/// A step that notes the thread it ran on and counts its runs in a plain
/// int, which only the mutex guards (ThreadSanitizer sees a step that runs
/// without it).
struct CountingStep final : DelegatedStep {
    int& count;
    std::thread::id ran_on;
    explicit CountingStep(int& c) : count(c) {}
    void run() noexcept override {
        ++count;
        ran_on = std::this_thread::get_id();
    }
};

}  // namespace

TEST_CASE("inbox: closed until opened, then oldest first; closing hands back what it held") {
    Inbox inbox;
    Dummy a, b, c;
    CHECK_FALSE(inbox.push(&a));  // closed: the supervisor is not started
    inbox.open();
    CHECK(inbox.empty());
    CHECK(inbox.take() == nullptr);
    REQUIRE(inbox.push(&a));
    REQUIRE(inbox.push(&b));
    CHECK_FALSE(inbox.empty());
    CHECK(to_vector(inbox.take()) == std::vector<TaskBase*>{&a, &b});
    CHECK(inbox.empty());
    REQUIRE(inbox.push(&c));
    CHECK(to_vector(inbox.close()) == std::vector<TaskBase*>{&c});
    CHECK(inbox.empty());
    CHECK_FALSE(inbox.push(&a));
    CHECK(inbox.close() == nullptr);  // closing twice hands back nothing
    inbox.open();
    CHECK(inbox.push(&a));
}

TEST_CASE("inbox: pushes from several threads all come out, each thread's in its order" * doctest::timeout(60)) {
    constexpr int threads = 4;
    constexpr int per_thread = 20000;
    Inbox inbox;
    inbox.open();
    std::vector<std::deque<Dummy>> tasks(threads);  // tasks never move
    for (int t = 0; t < threads; ++t)
        for (int i = 0; i < per_thread; ++i) tasks[t].emplace_back(static_cast<TaskId>(t) << 32 | static_cast<TaskId>(i));
    std::latch go{threads + 1};
    std::atomic<int> refused{0};
    std::vector<std::thread> pushers;
    for (int t = 0; t < threads; ++t)
        pushers.emplace_back([&, t] {
            go.arrive_and_wait();
            for (auto& task : tasks[t])
                if (!inbox.push(&task)) refused.fetch_add(1);
        });
    go.arrive_and_wait();
    std::vector<int> next(threads, 0);
    int seen = 0;
    bool in_order = true;
    const auto take_all = [&] {
        for (TaskBase* t : to_vector(inbox.take())) {
            const auto thread = static_cast<int>(t->id >> 32);
            in_order = in_order && static_cast<int>(t->id & 0xFFFFFFFFU) == next[thread];
            ++next[thread];
            ++seen;
        }
    };
    while (seen < threads * per_thread / 2) take_all();  // drains while they push
    for (auto& p : pushers) p.join();
    take_all();
    CHECK(refused == 0);
    CHECK(in_order);
    CHECK(seen == threads * per_thread);
    CHECK(inbox.empty());
}

TEST_CASE("reserved ids: taken once each, refilled one step per id taken, bounded") {
    static_assert(ReservedIds::refill_limit < ReservedIds::capacity);
    ReservedIds ids;
    CHECK(ids.take() == 0);  // nothing reserved yet
    TaskId fresh = 0;
    const auto reserve = [&] { return ++fresh; };
    ids.refill(reserve);
    CHECK(fresh == ReservedIds::refill_limit);  // one hold of the mutex sets aside no more than that
    for (std::size_t i = 1; i < ReservedIds::capacity / ReservedIds::refill_limit + 2; ++i) ids.refill(reserve);
    CHECK(fresh == ReservedIds::capacity);  // full: no more records set aside than that
    CHECK(ids.take() == 1);
    CHECK(ids.take() == 2);
    ids.refill(reserve);
    CHECK(fresh == ReservedIds::capacity + 2);  // exactly the two taken
    std::set<TaskId> taken{1, 2};
    for (TaskId id = ids.take(); id != 0; id = ids.take()) CHECK(taken.insert(id).second);
    CHECK(taken.size() == ReservedIds::capacity + 2);

    // A refill that runs out of memory stops, leaving the rest empty.
    int calls = 0;
    ids.refill([&]() -> TaskId {
        if (++calls == 3) throw std::bad_alloc();
        return 1000 + static_cast<TaskId>(calls);
    });
    CHECK(ids.take() == 1001);
    CHECK(ids.take() == 1002);
    CHECK(ids.take() == 0);
}

TEST_CASE("reserved ids: takers on several threads never get the same id" * doctest::timeout(60)) {
    constexpr int threads = 4;
    constexpr TaskId total = 200000;
    ReservedIds ids;
    std::mutex refill_mutex;  // refill() wants the supervisor's mutex: one filler at a time
    std::atomic<TaskId> fresh{0};
    const auto refill = [&] {
        std::lock_guard lock(refill_mutex);
        ids.refill([&]() -> TaskId {
            const TaskId id = fresh.load(std::memory_order_relaxed) + 1;
            if (id > total) throw std::length_error("enough");
            fresh.store(id, std::memory_order_relaxed);
            return id;
        });
    };
    std::vector<std::vector<TaskId>> got(threads);
    std::latch go{threads};
    std::vector<std::thread> takers;
    for (int t = 0; t < threads; ++t)
        takers.emplace_back([&, t] {
            go.arrive_and_wait();
            for (;;) {
                if (const TaskId id = ids.take(); id != 0) {
                    got[t].push_back(id);
                    continue;
                }
                if (fresh.load() >= total) break;
                refill();
            }
        });
    for (auto& t : takers) t.join();
    for (TaskId id = ids.take(); id != 0; id = ids.take()) got[0].push_back(id);
    std::set<TaskId> all;
    std::size_t count = 0;
    for (const auto& g : got) {
        all.insert(g.begin(), g.end());
        count += g.size();
    }
    CHECK(count == total);
    CHECK(all.size() == total);
}

TEST_CASE("supervisor mutex: a holder drains what was pushed before; unlock sends what was deferred under it") {
    FakeHost host;
    SupervisorMutex mutex(host);
    mutex.lock();
    mutex.open_inbox();
    host.is_hungry = false;  // a saturated pool: pushes wait for the next holder
    mutex.unlock();
    Dummy a, b;
    REQUIRE(mutex.push(&a));
    REQUIRE(mutex.push(&b));
    CHECK(host.queued.empty());
    mutex.lock();
    CHECK(host.queued.empty());  // locking only locks
    mutex.drain_inbox();
    CHECK(host.queued == std::vector<TaskBase*>{&a, &b});
    // What was deferred under the mutex goes out once it is released, by
    // the mutex itself (a failed thread start's error, here).
    std::vector<std::string> logged;
    atasker::set_log_sink([&](atasker::LogLevel, std::string_view m) { logged.emplace_back(m); });
    mutex.defer_error("could not start a thread");
    mutex.defer_thresholds_lost();
    mutex.defer_thresholds_lost();
    CHECK(logged.empty());
    mutex.unlock();
    CHECK(logged == std::vector<std::string>{"could not start a thread",
                                             "2 task(s) queued without their wait-time thresholds: the timers could "
                                             "not take them"});
    mutex.lock();
    mutex.unlock();
    CHECK(logged.size() == 2);  // nothing deferred, nothing sent
    atasker::set_log_sink({});
}

TEST_CASE("supervisor mutex: while hungry a push is queued at once, by the putter or by the holder" *
          doctest::timeout(30)) {
    FakeHost host;
    SupervisorMutex mutex(host);
    mutex.lock();
    mutex.open_inbox();
    mutex.unlock();  // hungry: publishes it for pushes

    Dummy a;
    REQUIRE(mutex.push(&a));  // nobody holds the mutex: the putter queues it
    CHECK(host.queued == std::vector<TaskBase*>{&a});

    // Held by this thread: another thread's push cannot take it, and this
    // thread's unlock must queue the task before it returns.
    Dummy b;
    mutex.lock();
    std::async(std::launch::async, [&] { REQUIRE(mutex.push(&b)); }).get();
    CHECK(host.queued.size() == 1);
    mutex.unlock();
    CHECK(host.queued == std::vector<TaskBase*>{&a, &b});

    mutex.lock();
    TaskBase* left = mutex.close_inbox();
    mutex.unlock();
    CHECK(left == nullptr);
    Dummy c;
    CHECK_FALSE(mutex.push(&c));  // closed: the caller must put under the mutex
}

TEST_CASE("supervisor mutex: a step left while another step's thread holds the mutex runs there, before it lets "
          "go" * doctest::timeout(30)) {
    FakeHost host;
    SupervisorMutex mutex(host);
    int count = 0;
    CountingStep free_step(count);
    mutex.run_locked(free_step);  // the mutex is free: on this thread
    CHECK(count == 1);
    CHECK(free_step.ran_on == std::this_thread::get_id());

    // This thread's step holds the mutex until the other thread's step is
    // left (that thread sleeps only once it is); then this thread runs it.
    CountingStep left(count);
    std::atomic<pid_t> owner{0};
    std::thread owner_thread;
    struct Holding final : DelegatedStep {
        std::function<void()> body;
        void run() noexcept override { body(); }
    } holding;
    holding.body = [&] {
        std::latch has_tid(1);
        owner_thread = std::thread([&] {
            owner = ::gettid();
            has_tid.count_down();
            mutex.run_locked(left);
        });
        has_tid.wait();
        test_support::until_blocked(owner);
    };
    mutex.run_locked(holding);
    CHECK(count == 2);
    CHECK(left.ran_on == std::this_thread::get_id());
    owner_thread.join();
}

TEST_CASE("supervisor mutex: any other holder hands a step back to its thread, even from a condition variable's "
          "wait" * doctest::timeout(30)) {
    FakeHost host;
    SupervisorMutex mutex(host);
    std::condition_variable_any cv;
    bool notified = false;
    // A step that notifies the variable the holder waits on, as a task's
    // end notifies stop(): run inside that wait's unlock it would deadlock.
    struct Notifying final : DelegatedStep {
        std::condition_variable_any* cv = nullptr;
        bool* notified = nullptr;
        std::thread::id ran_on;
        void run() noexcept override {
            *notified = true;
            ran_on = std::this_thread::get_id();
            cv->notify_all();
        }
    } step;
    step.cv = &cv;
    step.notified = &notified;
    std::unique_lock lock(mutex);
    std::atomic<pid_t> owner{0};
    std::latch has_tid(1);
    std::thread owner_thread([&] {
        owner = ::gettid();
        has_tid.count_down();
        mutex.run_locked(step);
    });
    has_tid.wait();
    test_support::until_blocked(owner);  // its step is left
    cv.wait(lock, [&] { return notified; });
    CHECK(step.ran_on != std::this_thread::get_id());
    lock.unlock();
    owner_thread.join();
}

TEST_CASE("supervisor mutex: steps from many threads each run once, under the mutex" * doctest::timeout(60)) {
    constexpr int threads = 4;
    constexpr int per_thread = 20000;
    FakeHost host;
    SupervisorMutex mutex(host);
    int count = 0;
    std::latch go(threads + 1);
    std::vector<std::thread> owners;
    for (int i = 0; i < threads; ++i)
        owners.emplace_back([&] {
            go.arrive_and_wait();
            CountingStep step(count);
            for (int n = 0; n < per_thread; ++n) mutex.run_locked(step);
        });
    // A holder that takes the mutex by lock() too, as puts and queries do:
    // it hands back what is left while it holds it.
    go.arrive_and_wait();
    int held = 0;
    for (int n = 0; n < per_thread; ++n) {
        mutex.lock();
        ++held;
        mutex.unlock();
    }
    for (auto& t : owners) t.join();
    mutex.lock();
    CHECK(count == threads * per_thread);
    CHECK(held == per_thread);
    mutex.unlock();
}
