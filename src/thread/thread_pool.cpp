#include "thread/thread_pool.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <fmt/chrono.h>

#include <atasker/error.hpp>
#include <atasker/log.hpp>

#include "sync/futex.hpp"
#include "sync/saturating.hpp"
#include "sync/system_error.hpp"
#include "core/task_table.hpp"

namespace atasker::detail {
namespace {
// A pool thread's own state, null on any other thread. Plain pointers in
// the initial-exec model, so a read is one load: a thread task reads the
// initializer's error before it runs, and a thread_local exception_ptr (a
// destructor to register, so a guard in the dynamic model) cost a call to
// __tls_get_addr per task (pinned tiny tasks: 1.02x, +-1.1%, 15 pairs).
/// The time slice of the pool thread, for the threads it starts to inherit
/// (reserve()).
[[gnu::tls_model("initial-exec")]] thread_local const SchedSlice* this_thread_slice = nullptr;
[[gnu::tls_model("initial-exec")]] thread_local const ThreadPool::Host* this_thread_host = nullptr;
/// What the pool thread's initializer threw, kept in its main()'s frame.
[[gnu::tls_model("initial-exec")]] thread_local const std::exception_ptr* this_thread_init_error = nullptr;

// Runs a pool thread's initializer; when it throws, logs and returns the
// error its tasks fail with.
std::exception_ptr run_thread_initializer(const std::function<void()>& init, const char* pool) noexcept {
    std::string what;
    try {
        init();
        return nullptr;
    } catch (...) {
        try {
            what = describe(std::current_exception());
        } catch (...) {  // no memory for the description
        }
    }
    log(LogLevel::error, "{}: thread_initializer threw {}; every task this thread takes fails with that error", pool,
        what);
    try {
        return std::make_exception_ptr(
            Error(fmt::format("the {}'s thread_initializer failed on the thread that took this task: {}", pool, what)));
    } catch (...) {
        return std::current_exception();
    }
}
}  // namespace

const ThreadPool::Host* ThreadPool::current_host() noexcept { return this_thread_host; }
std::exception_ptr ThreadPool::initializer_error() noexcept {
    return this_thread_init_error != nullptr ? *this_thread_init_error : nullptr;
}

void ThreadPool::configure(const PoolOptions& options, std::unique_lock<SupervisorMutex>& lock) {
    options_ = options;
    // Threads above a lowered capacity retire as they go idle.
    wake_all_idle();
    if (count_ >= options_.min_size) return;
    std::vector<Sleeper*> reserved;
    reserved.reserve(options_.min_size - count_);
    try {
        while (count_ < options_.min_size) reserved.push_back(&reserve());
    } catch (...) {
        for (Sleeper* s : reserved) unreserve(*s);
        throw;
    }
    lock.unlock();
    std::exception_ptr first;
    std::size_t failed = 0;  // launch() fails for a suffix at most: move those to the front
    for (Sleeper*& s : reserved) {
        if (std::exception_ptr e = launch(*s)) {
            if (!first) first = e;
            std::swap(s, reserved[failed++]);
        }
    }
    lock.lock();
    for (std::size_t i = 0; i < failed; ++i) unreserve(*reserved[i]);
    if (first) std::rethrow_exception(first);
}

void ThreadPool::wake_for(const Admission& admission) noexcept {
    // Threads already woken or starting will each take one of the startable tasks.
    const std::size_t n = admission.startable(0);
    const std::size_t already = pending();
    if (n > already) wake(n - already, admission.critical_waiting());
}

void ThreadPool::wake_all_idle() noexcept {
    for (Sleeper* s = idle_list_; s != nullptr; s = s->next) {
        s->word.store(1, std::memory_order_relaxed);
        futex_wake(s->word);
    }
}

void ThreadPool::wake(std::size_t startable, bool critical_waiting) noexcept {
    // A critical task goes to a thread whose task has just returned: that
    // thread takes the most urgent task as soon as it has the mutex, sooner
    // than a sleeper wakes, and a thread started for the task would find
    // nothing left (a critical task put just as the previous one returns).
    // Nothing is left without a taker: the critical task takes the place
    // in the running count of the task that thread ended, so what it leaves
    // queued could not have started on that place either.
    if (critical_waiting) startable -= std::min(startable, ending());
    for (; startable > 0 && idle_list_ != nullptr; --startable) {
        Sleeper* s = idle_list_;
        idle_list_ = s->next;
        --idle_;
        s->signaled = true;
        ++signals_;
        s->word.store(1, std::memory_order_relaxed);
        mutex_.defer_wake(s->word);
    }
    const std::size_t cap = options_.capacity();
    const std::size_t critical_cap = saturating_add(cap, behaviour_.critical_extra);
    for (; startable > 0 && (count_ < cap || (critical_waiting && count_ < critical_cap)); --startable) {
        try {
            mutex_.defer_start(reserve());
        } catch (const std::exception& e) {  // no memory for its place
            mutex_.defer_error(fmt::format("{}; the task waits for a free one of the {} running", e.what(), count_));
            return;
        }
    }
}

std::size_t ThreadPool::ending() const noexcept {
    std::size_t n = 0;
    for (const Sleeper& s : sleepers_) n += s.ending.load(std::memory_order_relaxed) ? 1 : 0;
    return n;
}

ThreadPool::Sleeper& ThreadPool::reserve() {
    Sleeper* me = spare_sleepers_ != nullptr ? spare_sleepers_ : &sleepers_.emplace_back();
    if (me == spare_sleepers_) spare_sleepers_ = me->next;
    try {
        threads_.emplace_front();
    } catch (...) {
        me->next = spare_sleepers_;
        spare_sleepers_ = me;
        throw;
    }
    me->pool = this;
    me->self = threads_.begin();
    me->launched.store(0, std::memory_order_relaxed);
    // A pool thread that starts one while it has the short slice (a critical
    // task putting another) passes on what it knows of its own slice.
    me->inherited = this_thread_slice != nullptr ? this_thread_slice->for_new_thread() : SchedSlice{};
    ++count_;
    ++starting_;
    return *me;
}

void ThreadPool::unreserve(Sleeper& me) noexcept {
    threads_.erase(me.self);
    me.next = spare_sleepers_;
    spare_sleepers_ = &me;
    --count_;
    --starting_;
    exited_.notify_all();  // join(all) may wait for this one
}

std::exception_ptr ThreadPool::launch(Sleeper& me) noexcept {
    try {
        // Nobody else touches the handle before `launched` says it is there.
        *me.self = start_thread(fmt::format("a {}", behaviour_.name), [this, &me] { main(me); });
    } catch (...) {
        return std::current_exception();
    }
    me.launched.store(1, std::memory_order_release);
    futex_wake(me.launched);
    return nullptr;
}

void ThreadPool::launch_reserved(Sleeper& me) noexcept {
    std::exception_ptr error = launch(me);
    if (!error) return;
    std::lock_guard lock(mutex_);
    unreserve(me);
    mutex_.defer_error(
        fmt::format("{}; the task waits for a free one of the {} running", describe(error), count_));
}

std::size_t ThreadPool::idle_limit() const noexcept {
    // Where critical tasks grow the pool, two threads past capacity may wait
    // idle (until idle_timeout): the next critical task finds one awake
    // instead of paying for a thread's start on a saturated pool. Two, not
    // one: a critical task put as the previous one returns (its thread not
    // yet back at the mutex, see wake()) finds the other.
    const std::size_t cap = options_.capacity();
    const std::size_t standby = behaviour_.critical_extra > 0 ? 2 : 0;
    return saturating_add(cap, standby);
}

void ThreadPool::begin_stop() {
    stopping_ = true;
    wake_all_idle();
}

void ThreadPool::join(std::unique_lock<SupervisorMutex>& lock, bool all) {
    if (all) exited_.wait(lock, [this] { return empty(); });
    std::list<std::thread> done;
    done.splice(done.end(), exited_threads_);
    lock.unlock();
    for (auto& t : done) t.join();
    lock.lock();
}

void ThreadPool::main(Sleeper& me) {
    // Its handle must be in *me.self before the thread can exit, where
    // others join it; the starter stores it as soon as the thread exists.
    while (me.launched.load(std::memory_order_acquire) == 0) futex_wait(me.launched, 0);
    const auto self = me.self;  // me is a spare sleeper again before the thread is done
    SchedSlice slice = me.inherited;
    this_thread_slice = &slice;
    this_thread_host = &host_;
    std::exception_ptr init_error;
    this_thread_init_error = &init_error;
    std::unique_lock lock(mutex_);
    if (options_.thread_initializer) {
        // A copy: set_thread_pool() may replace the options while it runs.
        const std::function<void()> init = options_.thread_initializer;
        lock.unlock();
        init_error = run_thread_initializer(init, behaviour_.name);
        lock.lock();
    }
    lock.unlock();
    host_.thread_started();
    lock.lock();
    --starting_;
    bool retired = false;
    bool yielded = false;
    for (;;) {
        if (Job job = host_.take(wall_now()); job.task != nullptr) {
            ++busy_;
            lock.unlock();
            run_chain(me, job, slice);
            lock.lock();
            if (--busy_ == 0) host_.quiet();
            yielded = false;
            continue;
        }
        if (stopping_ || count_ > idle_limit()) break;
        // A thread pool thread out of work yields its CPU once before it
        // sleeps: where it shares the CPU with a submitter, the submitter
        // runs on and queues more, and this thread takes them without being
        // woken, instead of a wake-up and two context switches every few
        // tasks (atasker-bench section 1, everything on CPU 0: 2.6M -> 4.8M
        // tasks/s). Where it has a CPU to itself the yield returns at once.
        // Not for process tasks (behaviour_): each takes microseconds anyway.
        // Not above capacity either: such a thread is there for critical
        // tasks, and one put while it yields would find no idle thread to wake.
        if (behaviour_.yield_when_idle && !yielded && !on_standby()) {
            yielded = true;
            ++yielding_;
            lock.unlock();
            std::this_thread::yield();
            lock.lock();
            --yielding_;
            continue;
        }
        yielded = false;
        const Woken how = sleep(me, lock, slice);
        if (how == Woken::timed_out && count_ > options_.min_size && !host_.busy_without_threads()) {
            retired = true;  // idle too long
            break;
        }
    }
    me.next = spare_sleepers_;
    spare_sleepers_ = &me;
    // No longer a pool thread from here on: a resize or a put must not count
    // on it while it says goodbye (a process pool thread ends its worker).
    --count_;
    ++exiting_;
    // Threads that exited before this one have nothing left to do but
    // return: join them here, so a pool that grows and shrinks for days
    // (critical bursts, idle retirement) keeps at most a few unjoined
    // threads, each holding its stack, instead of all of them until stop().
    join(lock, false);
    const std::size_t left = count_;
    const auto idle_timeout = options_.idle_timeout;
    lock.unlock();
    if (retired)
        log(LogLevel::debug, "{}: a thread retired after {} idle, {} left", behaviour_.name,
            std::chrono::duration_cast<std::chrono::milliseconds>(idle_timeout), left);
    host_.thread_exiting();
    lock.lock();
    --exiting_;
    exited_threads_.splice(exited_threads_.end(), threads_, self);
    exited_.notify_all();
    this_thread_slice = nullptr;  // slice and init_error go with this frame
    this_thread_init_error = nullptr;
}

ThreadPool::Woken ThreadPool::sleep(Sleeper& me, std::unique_lock<SupervisorMutex>& lock, SchedSlice& slice) {
    me.signaled = false;
    me.word.store(0, std::memory_order_relaxed);
    me.next = idle_list_;
    idle_list_ = &me;
    ++idle_;
    const bool may_retire = count_ > options_.min_size;
    const auto deadline = std::chrono::steady_clock::now() + options_.idle_timeout;
    me.retire_at = may_retire ? deadline : std::chrono::steady_clock::time_point::max();
    Woken how = Woken::changed;
    // A thread above capacity is there for critical tasks: it waits with a
    // short time slice. It does not spin before it sleeps: with the short
    // slice a woken thread starts about as soon, and a spinning one takes
    // turns with computing threads (atasker-bench section 3, low tasks
    // computing: p99 25 us with a 50 us spin, 2 us without). Nor does any
    // other thread: one that spun ~50 us on its word (yielding every 128
    // pauses) before sleeping, its waker skipping the futex call while it
    // spun, ran 0.89x (+-12%) the tiny tasks per second with 1 submitter (2
    // vCPUs, paired runs): the spinner takes turns with the submitter.
    const bool standby = on_standby();
    for (;;) {
        lock.unlock();
        if (standby) slice.shorten();
        if (may_retire) {
            const std::chrono::nanoseconds left = deadline - std::chrono::steady_clock::now();
            futex_wait(me.word, 0, &left);
        } else {
            futex_wait(me.word, 0);
        }
        lock.lock();
        if (me.signaled) {  // wake() took it off the idle list
            --signals_;
            return Woken::signaled;
        }
        if (stopping_ || count_ > idle_limit()) break;
        if (may_retire && std::chrono::steady_clock::now() >= deadline) {
            how = Woken::timed_out;
            break;
        }
        me.word.store(0, std::memory_order_relaxed);  // a change that does not concern it, or spurious
    }
    for (Sleeper** p = &idle_list_; *p != nullptr; p = &(*p)->next) {
        if (*p == &me) {
            *p = me.next;
            break;
        }
    }
    --idle_;
    return how;
}

void ThreadPool::run_chain(Sleeper& me, Job job, SchedSlice& slice) {
    // Run, then record the end and take the next task in one critical section,
    // so a busy thread locks once per task.
    std::string log_line;  // the rare failure's, logged by settle()
    EndAndTake step(*this, me, log_line);
    while (job.task != nullptr) {
        if (slice.is_short() && job.task->priority() != Priority::critical) slice.restore();
        host_.run(job);
        step.job = job;
        step.now = wall_now();  // ends one task and starts the next
        // Seen under the mutex, the flag says the thread has not yet had it
        // since its task returned (cleared under the mutex, by the step).
        me.ending.store(true, std::memory_order_relaxed);
        mutex_.prefetch_inbox();
        end_and_take(step);
        host_.settle(job, step.ended, log_line);
        if (!log_line.empty()) log_line.clear();
        job = step.next;
    }
}

void ThreadPool::EndAndTake::run() noexcept {
    me.ending.store(false, std::memory_order_relaxed);
    ended = pool.host_.finish(job, now, log_line);
    next = pool.host_.take(now);
}

void ThreadPool::end_and_take(EndAndTake& step) noexcept {
    if (behaviour_.delegate_ends) {
        mutex_.run_locked(step);
        return;
    }
    mutex_.lock();
    step.run();
    mutex_.unlock();
}

}  // namespace atasker::detail
