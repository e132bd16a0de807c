#include "process/process_lane.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <span>
#include <string>

#include <fmt/format.h>

#include <atasker/error.hpp>
#include <atasker/init.hpp>
#include <atasker/log.hpp>

#include "process/mp_registry.hpp"
#include "process/put_calls.hpp"
#include "core/task_table.hpp"
#include "process/shm_slots.hpp"
#include "process/zygote.hpp"

namespace atasker::detail {
namespace {

[[gnu::tls_model("initial-exec")]] thread_local InlineCarrier* current_carrier = nullptr;

/// A lane thread's riders: those of the call it carries, and those of the
/// call it ended, kept until settled (run_chain ends one call and takes the
/// next in one critical section, then settles the first). Both have room
/// for max_riding from the thread's start, so that taking riders under the
/// mutex never allocates.
struct RiderLists {
    struct Ended {
        TaskBase* task;
        bool ended;
        std::string log_line;
    };
    std::vector<Job> carrying;
    std::vector<Ended> ending;
    bool ready = false;  // room was made
};
thread_local RiderLists rider_lists;

/// Collects the calls of the tasks run with it, to carry them together.
class Collector final : public CallCarrier {
public:
    void carry(const MpCall& call) noexcept override { calls_[count_++] = call; }
    [[nodiscard]] std::span<const MpCall> calls() const noexcept { return {calls_.data(), count_}; }

private:
    std::array<MpCall, ProcessLane::max_riding> calls_{};
    std::size_t count_ = 0;
};

// The resident set of process `pid` in bytes (/proc/<pid>/statm); 0 when unknown.
std::uint64_t resident_bytes_of(pid_t pid) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/statm", static_cast<int>(pid));
    std::FILE* f = std::fopen(path, "re");
    if (f == nullptr) return 0;
    unsigned long long size = 0;
    unsigned long long resident = 0;
    const int got = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    return got == 2 ? resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

/// A lane thread's carrier: sends the call and waits for the answer.
class ProcessLane::WaitingCarrier final : public CallCarrier {
public:
    WaitingCarrier(ProcessLane& lane, const Job& job) noexcept : lane_(lane), job_(job) {}
    void carry(const MpCall& call) noexcept override { lane_.carry_and_wait(job_.ticket, call, job_.progress); }

private:
    ProcessLane& lane_;
    const Job& job_;
};

/// The putting thread's carrier (run_here): hands the call to its
/// InlineCarrier (a fiber loop's, or PutCalls), which sends it and returns.
class ProcessLane::InlineStart final : public CallCarrier {
public:
    InlineStart(ProcessLane& lane, const Job& job) noexcept : lane_(lane), job_(job) {}
    void carry(const MpCall& call) noexcept override {
        InlineCarrier* carrier = InlineCarrier::current();  // a fiber loop's, else the lane's own
        (carrier != nullptr ? carrier : lane_.put_calls_.get())->start(lane_, *lane_.workers_, job_.ticket, call);
    }

private:
    ProcessLane& lane_;
    const Job& job_;
};

InlineCarrier* InlineCarrier::current() noexcept { return current_carrier; }
void InlineCarrier::set_current(InlineCarrier* carrier) noexcept { current_carrier = carrier; }

ProcessLane::ProcessLane(LaneHost& host)
    : Lane(host, false),
      pool_(host.supervisor_mutex(), *this, {.name = "process pool", .critical_extra = 0, .yield_when_idle = false}) {
    starts_here_ = true;  // a fiber loop's calls, and PutCalls'
    runs_waited_ = true;  // PutCalls' answers
}

ProcessLane::~ProcessLane() = default;

void ProcessLane::configure(const PoolOptions& options, bool active, std::unique_lock<SupervisorMutex>& lock) {
    if (!initialized()) {
        // Fork the zygote now if nobody did: the fewer threads exist, the safer.
        lock.unlock();
        init();
        lock.lock();
    }
    (void)lifetime_of(options);  // refuse what cannot work before anything changes
    const auto previous = options_;
    options_ = options;
    try {
        if (active) ensure_workers(lock);
    } catch (...) {
        options_ = previous;
        throw;
    }
}

void ProcessLane::start(std::unique_lock<SupervisorMutex>& lock) {
    pool_.resume();
    ensure_workers(lock);
}

void ProcessLane::ensure_workers(std::unique_lock<SupervisorMutex>& lock) {
    if (!options_) return;
    if (!workers_) {
        // Without the lock: it may fork the zygote and waits for it.
        lock.unlock();
        std::unique_ptr<WorkerProcesses> made;
        std::unique_ptr<PutCalls> put_calls;
        std::vector<Job> slots;
        std::vector<std::size_t> idle;
        std::vector<std::size_t> free;
        std::vector<char> recycling;
        std::vector<const std::vector<Job>*> riders;
        try {
            if (!initialized()) init();
            check_mp_registry();
            made = std::make_unique<WorkerProcesses>();
            // Full size now: releasing a slot (noexcept) never allocates.
            slots.resize(made->slot_count());
            idle.reserve(slots.size());
            free.reserve(slots.size());
            recycling.resize(slots.size());
            riders.resize(slots.size());
            for (std::size_t k = slots.size(); k > 0; --k) free.push_back(k - 1);
        } catch (...) {
            lock.lock();
            throw;
        }
        try {
            put_calls = std::make_unique<PutCalls>(*this, host_.supervisor_mutex(), *made);
        } catch (const std::exception& e) {
            // Puts then leave every call to the lane's threads.
            log(LogLevel::warning, "process pool: puts cannot start calls themselves: {}", e.what());
        }
        lock.lock();
        if (!workers_) {
            workers_ = std::move(made);
            put_calls_ = std::move(put_calls);
            slots_ = std::move(slots);
            idle_ = std::move(idle);
            free_ = std::move(free);
            recycling_ = std::move(recycling);
            riders_ = std::move(riders);
        }
    }
    workers_->set_lifetime(lifetime_of(*options_));
    PoolOptions o = *options_;
    const std::size_t slots = slots_.size();
    if (o.capacity() > slots) {
        if (o.pool_size != 0 || o.max_size)
            throw Error(fmt::format("process pool: max_size ({}) exceeds the {} worker slots at::init() reserved; "
                                    "call at::init({{.max_workers = {}}}) first thing in main",
                                    o.capacity(), slots, o.capacity()));
        o.max_size = slots;  // "unlimited" processes: as many as there are slots
    }
    admission_.configure(o);
    pool_.configure(o, lock);
    wake();
}

WorkerProcesses::Lifetime ProcessLane::lifetime_of(const PoolOptions& options) {
    WorkerProcesses::Lifetime l;
    l.max_tasks = options.max_tasks_per_worker;
    l.max_memory = options.max_worker_memory;
    if (const MpInit* init = options.initializer.get()) {
        if (init->index() >= mp_inits_in_workers())
            throw Error(fmt::format("process pool: the initializer \"{}\" was registered after at::init(), so the "
                                    "worker processes (forked from the snapshot at::init() took) do not have it; "
                                    "define it at namespace scope: inline const at::MpInit {}{{...}};",
                                    init->name(), init->name()));
        l.initializer = init->index();
        l.initializer_name = init->name();
    }
    if (l.max_memory != 0) {
        // A fresh worker starts with the zygote's pages (the program as it
        // was at at::init()): a limit at or below that replaces every
        // worker after each call, which is never what was meant.
        const std::uint64_t baseline = resident_bytes_of(runtime_zygote().pid());
        if (baseline != 0 && l.max_memory <= baseline)
            throw Error(fmt::format("process pool: max_worker_memory ({} bytes) is not above the {} KiB a fresh worker "
                                    "process starts with (the program's size at at::init()), so every worker would be "
                                    "replaced after each call; raise it, or give 0 for no limit",
                                    l.max_memory, baseline >> 10));
    }
    return l;
}

void ProcessLane::describe(PoolInfo& info) const {
    if (options_) info.options = *options_;
    info.workers = pool_.threads();
    info.idle = pool_.idle();
}

std::optional<std::size_t> ProcessLane::claim(bool idle_only) noexcept {
    std::vector<std::size_t>& from = !idle_.empty() || idle_only ? idle_ : free_;
    if (from.empty()) return std::nullopt;
    const std::size_t k = from.back();
    from.pop_back();
    return k;
}

void ProcessLane::release(std::size_t slot) noexcept {
    slots_[slot] = Job{};
    idle_.push_back(slot);  // room for every slot was reserved when the workers were made (ensure_workers)
}

Job ProcessLane::take(std::int64_t now) noexcept {
    // Every claimed slot holds a running task, so a slot is at hand unless
    // workers are being started or ended right now; a thread then finds
    // the task once one is (thread_started wakes it).
    if (idle_.empty() && free_.empty()) return {};
    Job job = host_.take(*this, now);
    if (job.task == nullptr) return job;
    job.ticket = *claim(false);
    slots_[job.ticket] = job;
    if (job.task->may_ride()) take_riders(job.ticket, now);
    return job;
}

void ProcessLane::take_riders(std::size_t slot, std::int64_t now) noexcept {
    const std::int64_t per_task = task_ns_.load(std::memory_order_relaxed);
    // Not before calls were timed; not while a place is free (a task that
    // may start now goes to a worker of its own).
    if (per_task <= 0 || admission_.startable(0) != 0 || !rider_lists.ready) return;
    // A worker checks its limits after each request: riders would take it past them.
    if (options_->max_tasks_per_worker != 0 || options_->max_worker_memory != 0) return;
    std::size_t n = static_cast<std::size_t>(
        std::min<std::int64_t>(max_riding, options_->batch_time.count() / per_task));
    // No more than this thread's share of the queue: the other threads take theirs.
    n = std::min(n, 1 + admission_.queued() / std::max<std::size_t>(1, pool_.threads()));
    std::vector<Job>& riders = rider_lists.carrying;
    while (riders.size() + 1 < n) {
        Job r = host_.take_rider(*this, now);
        if (r.task == nullptr) break;
        r.ticket = slot;
        riders.push_back(r);
    }
    if (!riders.empty()) riders_[slot] = &riders;
}

void ProcessLane::run(const Job& job) noexcept {
    if (riders_[job.ticket] != nullptr) {
        carry_riders(job);
        return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    WaitingCarrier carrier(*this, job);
    job.task->run(RunContext{.progress = {}, .carrier = &carrier});
    timed(std::chrono::steady_clock::now() - t0, 1);
}

void ProcessLane::carry_riders(const Job& job) noexcept {
    const auto t0 = std::chrono::steady_clock::now();
    Collector collector;
    const RunContext context{.progress = {}, .carrier = &collector};
    job.task->run(context);
    for (const Job& r : *riders_[job.ticket]) r.task->run(context);
    ProcessCall pc;
    pc.prepare_riders(*workers_, job.ticket, collector.calls());
    if (const int carries = carry(pc, job.ticket); carries > 0) pc.store(carries);
    timed(std::chrono::steady_clock::now() - t0, pc.tasks());
}

void ProcessLane::timed(std::chrono::steady_clock::duration took, std::size_t tasks) noexcept {
    const std::int64_t sample = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count() /
                                static_cast<std::int64_t>(tasks);
    const std::int64_t was = task_ns_.load(std::memory_order_relaxed);
    // A moving average over about the last 8 requests; a stale read from
    // another lane thread only loses one sample.
    task_ns_.store(was == 0 ? std::max<std::int64_t>(sample, 1) : was + (sample - was) / 8,
                   std::memory_order_relaxed);
}

bool ProcessLane::finish(const Job& job, std::int64_t now, std::string& log_line) {
    if (riders_[job.ticket] != nullptr) {
        riders_[job.ticket] = nullptr;
        RiderLists& lists = rider_lists;
        for (const Job& r : lists.carrying) {
            admission_.rider_ended();
            RiderLists::Ended& e = lists.ending.emplace_back(RiderLists::Ended{r.task, false, {}});
            e.ended = host_.complete(r.task, now, e.log_line);
        }
        lists.carrying.clear();
    }
    if (workers_->retiring(job.ticket)) [[unlikely]] {
        // Its worker is replaced in settle(), once the answer is delivered;
        // until then the slot stays claimed, so no call can reach it.
        slots_[job.ticket] = Job{};
        recycling_[job.ticket] = 1;
    } else {
        release(job.ticket);
    }
    return host_.complete(job.task, now, log_line);
}

void ProcessLane::settle(const Job& job, bool ended, const std::string& log_line) noexcept {
    if (ended) host_.settle(job.task, log_line);
    if (RiderLists& lists = rider_lists; !lists.ending.empty()) {
        for (const RiderLists::Ended& e : lists.ending)
            if (e.ended) host_.settle(e.task, e.log_line);
        lists.ending.clear();
    }
    if (recycling_[job.ticket] != 0) [[unlikely]] {
        recycling_[job.ticket] = 0;
        recycle(job.ticket);
    }
}

void ProcessLane::recycle(std::size_t slot) noexcept {
    try {
        workers_->recycle(slot);
    } catch (const std::exception& e) {
        // The slot's next call tries again and fails with the reason.
        log(LogLevel::error, "process pool: could not replace the worker process on slot {}: {}", slot, e.what());
    }
    const bool running = workers_->running(slot);
    std::lock_guard lock(host_.supervisor_mutex());
    (running ? idle_ : free_).push_back(slot);
    wake();
}

void ProcessLane::carry_and_wait(std::size_t slot, const MpCall& call, std::atomic<float>* progress) noexcept {
    ProcessCall pc;
    pc.prepare(*workers_, slot, call);
    if (call.task->end_status() != TaskStatus::completed) return;  // a chunk without memory for its requests
    const int carries = carry(pc, slot);
    if (carries == 0) return;
    if (const double p = pc.progress(); p > 0.0 && p <= 1.0) progress->store(static_cast<float>(p), std::memory_order_relaxed);
    pc.store(carries);
}

int ProcessLane::carry(ProcessCall& pc, std::size_t slot) noexcept {
    int carries = 1;  // sends in a row that reached no worker, this one included
    bool again = false;  // the rest of a chunk or riders after the first send
    for (;;) {
        if (again && workers_->retiring(slot)) {
            try {
                workers_->recycle(slot);  // the earlier items took it past its limit
            } catch (...) {
                pc.fail_rest(std::current_exception());
                return 0;
            }
        }
        again = true;
        if (!workers_->running(slot)) {
            try {
                workers_->replace(slot);  // the last one died, or none was started: a fresh worker
            } catch (...) {
                pc.fail_rest(std::current_exception());
                return 0;
            }
        }
        const ProcessCall::Sent sent = pc.send(no_bell);
        if (sent == ProcessCall::Sent::failed) {
            if (pc.pending()) continue;  // the next items
            return 0;
        }
        if (sent == ProcessCall::Sent::sent) pc.receive(true);
        if (pc.never_reached()) {
            if (carries <= ProcessCall::max_carries) {
                ++carries;
                continue;
            }
        } else if (pc.pending()) {  // the rest, after a death or what did not fit
            carries = 1;
            continue;
        }
        return carries;
    }
}

std::optional<Job> ProcessLane::start_here(TaskBase* task, std::atomic<float>* progress) noexcept {
    if (!workers_) return std::nullopt;
    InlineCarrier* carrier = InlineCarrier::current();
    if (carrier != nullptr) {
        // A fiber loop: the task ends on its thread, which must not run the
        // user's code there (its completion only fulfils a promise).
        if (!task->ends_anywhere() || !carrier->open()) return std::nullopt;
    } else if (!put_calls_ || !task->waiter_may_run() || runs_this_thread()) {
        // PutCalls: the task may end on the thread that waits for it.
        return std::nullopt;
    }
    const std::optional<std::size_t> slot = claim(true);
    if (!slot) return std::nullopt;
    const Job job{.task = task, .progress = progress, .ticket = *slot};
    slots_[*slot] = job;
    if (carrier == nullptr) {
        put_calls_->opened(*slot);
        ++put_calls_running_;
    }
    return job;
}

void ProcessLane::run_here(const Job& job) noexcept {
    InlineStart carrier(*this, job);
    job.task->run(RunContext{.progress = {}, .carrier = &carrier});
}

std::optional<Job> ProcessLane::start_waited(TaskBase* task) noexcept {
    if (!put_calls_) return std::nullopt;
    for (std::size_t k = 0; k < slots_.size(); ++k)
        if (slots_[k].task == task) return put_calls_->take_for_waiter(k) ? std::optional<Job>(slots_[k]) : std::nullopt;
    return std::nullopt;
}

void ProcessLane::run_waited(const Job& job) noexcept { put_calls_->end(job.ticket); }

bool ProcessLane::busy_without_threads() const noexcept {
    // Calls the puts made keep the workers busy while the threads sleep:
    // the threads, whose number the workers follow (thread_exiting), stay
    // while one runs or one ended within the idle_timeout. A call may last
    // longer than that, and another thread's check must see it too.
    return put_calls_running_ != 0 ||
           std::chrono::steady_clock::now() - put_call_last_ended_ < pool_.options().idle_timeout;
}

void ProcessLane::put_call_ended() noexcept {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(host_.supervisor_mutex());
    put_call_last_ended_ = now;
    if (--put_calls_running_ == 0) put_calls_done_.notify_all();
}

void ProcessLane::end_here(TaskBase* task, std::size_t slot, double progress) noexcept {
    std::string log_line;
    const bool retiring = workers_->retiring(slot);
    bool ended = false;
    {
        std::lock_guard lock(host_.supervisor_mutex());
        if (progress > 0.0 && progress <= 1.0)
            slots_[slot].progress->store(static_cast<float>(progress), std::memory_order_relaxed);
        if (retiring) {
            slots_[slot] = Job{};  // claimed until its worker is discarded, below
        } else {
            release(slot);
        }
        ended = host_.complete(task, wall_now(), log_line);  // or it runs again: nothing to settle
        if (ended) host_.begin_settle();
        wake();
    }
    if (ended) {
        host_.settle(task, log_line);
        host_.end_settle();
    }
    if (retiring) [[unlikely]] {
        // A fiber loop does not wait for a fork: the worker is ended now and
        // the slot freed; the lane thread that next takes it starts a fresh one.
        workers_->discard(slot);
        std::lock_guard lock(host_.supervisor_mutex());
        free_.push_back(slot);
        wake();
    }
}

void ProcessLane::carry_again(TaskBase* task, std::size_t slot) noexcept {
    std::lock_guard lock(host_.supervisor_mutex());
    release(slot);
    host_.requeue(task);
}

float ProcessLane::live_progress(const TaskBase& task) const noexcept {
    // A rider's is in its record (the slot reports the task the worker runs).
    for (std::size_t k = 0; k < slots_.size(); ++k)
        if (slots_[k].task == &task && riders_[k] == nullptr) return static_cast<float>(workers_->progress(k));
    return -1.0F;
}

bool ProcessLane::request_stop(TaskBase* task) noexcept {
    std::lock_guard lock(host_.supervisor_mutex());
    for (std::size_t k = 0; k < slots_.size(); ++k) {
        // A task of a request with riders is withdrawn if it has not
        // started, the worker killed if it runs (the riders after it are
        // carried again to a fresh one).
        if (slots_[k].task == task) return workers_->cancel(k, task->id);
        if (riders_[k] == nullptr) continue;
        for (const Job& r : *riders_[k])
            if (r.task == task) return workers_->cancel(k, task->id);
    }
    return false;
}

void ProcessLane::thread_started() noexcept {
    try {
        rider_lists.carrying.reserve(max_riding);
        rider_lists.ending.reserve(max_riding);
        rider_lists.ready = true;
    } catch (...) {  // no memory: this thread's calls carry no riders
    }
    // One worker process per lane thread, started with the thread so that
    // min_size workers wait warm.
    std::optional<std::size_t> slot;
    {
        std::lock_guard lock(host_.supervisor_mutex());
        if (live() < pool_.threads() && !free_.empty()) {
            slot = free_.back();
            free_.pop_back();
        }
    }
    if (!slot) return;
    try {
        workers_->spawn(*slot);
    } catch (const std::exception& e) {
        // The first call on this slot tries again and fails with the reason.
        log(LogLevel::error, "process pool: could not start a worker process: {}", e.what());
    }
    std::lock_guard lock(host_.supervisor_mutex());
    idle_.push_back(*slot);
    wake();
}

void ProcessLane::thread_exiting() noexcept {
    // Ends idle workers past one per remaining thread.
    for (;;) {
        std::size_t slot = 0;
        {
            std::lock_guard lock(host_.supervisor_mutex());
            if (live() <= pool_.threads() || idle_.empty()) return;
            slot = idle_.back();
            idle_.pop_back();
        }
        try {
            workers_->retire(slot);
        } catch (const std::exception& e) {
            log(LogLevel::error, "process pool: could not end the worker process on slot {}: {}", slot, e.what());
        }
        std::lock_guard lock(host_.supervisor_mutex());
        free_.push_back(slot);
    }
}

void ProcessLane::join(std::unique_lock<SupervisorMutex>& lock, bool all) {
    pool_.join(lock, all);
    if (all) put_calls_done_.wait(lock, [this] { return put_calls_running_ == 0; });
    if (!pool_.empty() || put_calls_running_ != 0 || !workers_) return;
    // Every worker and the zygote's hold on them end with it.
    std::unique_ptr<PutCalls> put_calls = std::move(put_calls_);
    std::unique_ptr<WorkerProcesses> ended = std::move(workers_);
    slots_.clear();
    idle_.clear();
    free_.clear();
    recycling_.clear();
    riders_.clear();
    lock.unlock();
    put_calls.reset();  // its collector's thread first: it reads the workers' slots
    ended.reset();
    lock.lock();
}

}  // namespace atasker::detail
