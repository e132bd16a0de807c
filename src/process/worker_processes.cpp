#include "process/worker_processes.hpp"

#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include <atasker/error.hpp>
#include <atasker/log.hpp>

#include "process/shm_slots.hpp"
#include "process/value_segment.hpp"
#include "sync/system_error.hpp"
#include "process/zygote.hpp"

namespace atasker::detail {

namespace {

constexpr std::uint64_t wake_key = 0;
constexpr std::uint64_t zygote_key = 1;
constexpr std::uint64_t first_worker_key = 2;

enum KillReason : int { kill_none = 0, kill_requested = 1, kill_timeout = 2, kill_retire = 3 };

int send_kill(int pidfd) noexcept { return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0)); }

std::string signal_name(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev != nullptr ? fmt::format("SIG{}", abbrev) : std::string("unknown signal");
}

std::string read_string(ByteReader& r) {
    std::uint32_t n = 0;
    r.read(&n, sizeof n);
    std::string s(n, '\0');
    r.read(s.data(), n);
    return s;
}

timespec to_timespec(std::chrono::steady_clock::time_point t) noexcept {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    if (ns <= 0) return timespec{0, 0};
    return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

// A request's first arguments, too large for the slot (`slot` measured
// them): written into a segment made for them, and their SegmentRef into the
// slot in their place. Returns the hold on the segment's name.
SegmentOwner write_args_segment(CallRequest& r, ByteWriter& slot, pid_t owner) {
    const std::uint64_t n = next_args_segment();
    SegmentOut out(args_segment_name(owner, n), slot.size());
    SegmentOwner held(owner, n);  // from here on, the name is removed however this ends
    ByteWriter whole = out.writer();
    r.write_args(whole);
    const SegmentRef ref{whole.size(), n};
    slot = ByteWriter(slot.data(), slot.capacity(), Overflow::measure);
    slot.write(&ref, sizeof ref);
    return held;
}

}  // namespace

struct WorkerProcesses::Worker {
    enum class Life { none, spawning, running, ended };

    SlotView slot{};
    Life life = Life::none;
    int pidfd = -1;
    pid_t pid = 0;
    std::uint64_t generation = 0;
    int spawn_errno = 0;
    bool pidfd_fired = false;
    bool status_known = false;
    int wait_status = 0;
    std::atomic<bool> ended{false};     // the end is known; published before the reaper posts `response`
    std::atomic<int> kill_reason{kill_none};
    CallOutcome death;                  // how it ended; written before `ended`
    std::uint64_t seq = 0;
    std::span<CallRequest> active;      // the batch in flight, for cancel()
    std::uint32_t bell = no_bell;       // the doorbell of the batch in flight, rung on death
    std::vector<std::size_t> offsets;   // each active record's offset in the request buffer
    std::vector<std::size_t> spare_offsets;  // the caller's: reused so a call does not allocate
    bool init_reported = false;              // its initializer's failure was logged
};

WorkerProcesses::WorkerProcesses(Options options)
    : slots_(runtime_slots()), zygote_(runtime_zygote()), options_(std::move(options)) {
    if (!claim_runtime())
        throw Error("another process pool already uses the worker processes; stop it before starting a new one");
    try {
        workers_ = std::make_unique<Worker[]>(slots_.count());
        for (std::size_t k = 0; k < slots_.count(); ++k) workers_[k].slot = slots_.slot(k);
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_ < 0) throw_system_error(errno, "cannot create an epoll instance");
        wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (wake_ < 0) throw_system_error(errno, "cannot create an eventfd");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = wake_key;
        if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev) != 0)
            throw_system_error(errno, "cannot watch the reaper's eventfd");
        ev.data.u64 = zygote_key;
        if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, zygote_.socket(), &ev) != 0)
            throw_system_error(errno, "cannot watch the zygote's socket");
        reaper_ = start_thread("the process pool's reaper", [this] { reaper_loop(); });
    } catch (...) {
        if (wake_ >= 0) ::close(wake_);
        if (epoll_ >= 0) ::close(epoll_);
        release_runtime();
        throw;
    }
}

WorkerProcesses::~WorkerProcesses() {
    stop();
    release_runtime();
}

std::size_t WorkerProcesses::slot_count() const noexcept { return slots_.count(); }
std::size_t WorkerProcesses::slot_capacity() const noexcept {
    return slots_.capacity() - sizeof(RequestHeader) - sizeof(RecordHeader);
}

WorkerProcesses::Worker& WorkerProcesses::worker(std::size_t k) const {
    if (k >= slots_.count())
        throw Error(fmt::format("worker slot {} is out of range; at::init() made {} slots (raise max_workers)", k,
                                slots_.count()));
    return workers_[k];
}

bool WorkerProcesses::running(std::size_t k) const noexcept {
    if (k >= slots_.count()) return false;
    std::lock_guard lock(mutex_);
    const Worker& w = workers_[k];
    return w.life == Worker::Life::running && !w.ended.load(std::memory_order_relaxed) &&
           w.kill_reason.load(std::memory_order_relaxed) != kill_retire;
}

pid_t WorkerProcesses::pid(std::size_t k) const noexcept {
    if (k >= slots_.count()) return 0;
    std::lock_guard lock(mutex_);
    const Worker& w = workers_[k];
    return w.life == Worker::Life::running && !w.ended.load(std::memory_order_relaxed) ? w.pid : 0;
}

void WorkerProcesses::spawn(std::span<const std::size_t> slots) {
    std::unique_lock lock(mutex_);
    for (std::size_t k : slots) (void)worker(k);
    // A worker discarded for its replacement ends within moments: wait for
    // its end, so the slot is never shared by two processes.
    changed_.wait(lock, [&] {
        for (std::size_t k : slots) {
            const Worker& w = workers_[k];
            if (w.life == Worker::Life::running && !w.ended && w.kill_reason.load() == kill_retire) return false;
        }
        return true;
    });
    if (stopped_) throw Error("the process pool is stopped; create a new one to start workers");
    if (zygote_lost_) throw Error("the process pool's zygote is gone, so no worker can start; restart the program");
    for (std::size_t k : slots) {
        Worker& w = worker(k);
        if (w.life == Worker::Life::spawning || (w.life == Worker::Life::running && !w.ended))
            throw Error(fmt::format("worker slot {} already has a worker process; retire() it first", k));
    }
    std::size_t sent = 0;
    try {
        for (std::size_t k : slots) {
            Worker& w = workers_[k];
            w.generation += 1;
            slots_.reset(k, w.generation);
            SlotControl& c = *w.slot.control;
            c.max_tasks.store(lifetime_.max_tasks, std::memory_order_relaxed);
            c.max_memory.store(lifetime_.max_memory, std::memory_order_relaxed);
            c.initializer.store(lifetime_.initializer, std::memory_order_relaxed);
            w.init_reported = false;
            w.life = Worker::Life::spawning;
            w.pidfd_fired = w.status_known = false;
            w.spawn_errno = 0;
            w.ended.store(false);
            w.kill_reason.store(kill_none);
            w.death = CallOutcome{};
            zygote_.send(ZygoteRequest{ZygoteRequest::spawn, static_cast<std::uint32_t>(k), w.generation});
            ++sent;
        }
    } catch (...) {
        for (std::size_t i = sent; i < slots.size(); ++i)
            if (workers_[slots[i]].life == Worker::Life::spawning) workers_[slots[i]].life = Worker::Life::none;
        // Spawns already asked for still complete; wait for them so the
        // slots are consistent, then report.
        changed_.wait(lock, [&] {
            for (std::size_t i = 0; i < sent; ++i)
                if (workers_[slots[i]].life == Worker::Life::spawning) return false;
            return true;
        });
        throw;
    }
    changed_.wait(lock, [&] {
        for (std::size_t k : slots)
            if (workers_[k].life == Worker::Life::spawning) return false;
        return true;
    });
    for (std::size_t k : slots) {
        const Worker& w = workers_[k];
        if (w.life == Worker::Life::none) {
            if (zygote_lost_)
                throw Error("the process pool's zygote is gone, so no worker can start; restart the program");
            throw_system_error(w.spawn_errno, fmt::format("cannot fork a worker process for slot {}", k));
        }
    }
}

void WorkerProcesses::set_lifetime(Lifetime lifetime) {
    std::lock_guard lock(mutex_);
    lifetime_ = std::move(lifetime);
    for (std::size_t k = 0; k < slots_.count(); ++k) {
        SlotControl& c = *workers_[k].slot.control;
        c.max_tasks.store(lifetime_.max_tasks, std::memory_order_relaxed);
        c.max_memory.store(lifetime_.max_memory, std::memory_order_relaxed);
    }
}

bool WorkerProcesses::retiring_slow(std::size_t k) noexcept {
    Worker& w = workers_[k];
    const SlotControl& c = *w.slot.control;
    const std::uint32_t flags = c.flags.load(std::memory_order_acquire);
    if ((flags & life_init_failed) != 0) {
        std::unique_lock lock(mutex_);
        if (!w.init_reported) {
            w.init_reported = true;
            const pid_t pid = w.pid;
            const std::string name = lifetime_.initializer_name;
            lock.unlock();
            log(LogLevel::error,
                "process pool: the initializer \"{}\" of worker process {} in slot {} threw {}; every task sent to "
                "that worker fails with this error",
                name, pid, k, c.init_error);
        }
    }
    return (flags & (life_retire_tasks | life_retire_memory)) != 0;
}

void WorkerProcesses::discard(std::size_t k) noexcept {
    std::unique_lock lock(mutex_);
    Worker& w = workers_[k];
    if (w.life != Worker::Life::running || w.ended) return;
    int expected = kill_none;
    if (!w.kill_reason.compare_exchange_strong(expected, kill_retire)) return;
    send_kill(w.pidfd);
    const pid_t pid = w.pid;
    const Lifetime limits = lifetime_;
    lock.unlock();
    const SlotControl& c = *w.slot.control;
    if ((c.flags.load(std::memory_order_relaxed) & life_retire_memory) != 0) {
        constexpr std::uint64_t mib = 1 << 20;
        log(LogLevel::debug, "process pool: worker process {} in slot {} replaced: its RSS {} MiB passed "
            "max_worker_memory {} MiB", pid, k, c.rss.load(std::memory_order_relaxed) / mib, limits.max_memory / mib);
    } else {
        log(LogLevel::debug, "process pool: worker process {} in slot {} replaced after {} tasks", pid, k,
            c.tasks_run.load(std::memory_order_relaxed));
    }
}

void WorkerProcesses::retire(std::size_t k) {
    std::unique_lock lock(mutex_);
    Worker& w = worker(k);
    if (w.life != Worker::Life::running || w.ended) return;
    int expected = kill_none;
    w.kill_reason.compare_exchange_strong(expected, kill_retire);
    send_kill(w.pidfd);
    changed_.wait(lock, [&] { return w.ended.load(); });
}

bool WorkerProcesses::kill(std::size_t k) noexcept {
    if (k >= slots_.count()) return false;
    std::lock_guard lock(mutex_);
    Worker& w = workers_[k];
    if (w.life != Worker::Life::running || w.ended) return false;
    int expected = kill_none;
    w.kill_reason.compare_exchange_strong(expected, kill_requested);
    send_kill(w.pidfd);
    return true;
}

bool WorkerProcesses::cancel(std::size_t k, std::uint64_t tag) noexcept {
    if (k >= slots_.count()) return false;
    std::lock_guard lock(mutex_);
    Worker& w = workers_[k];
    if (w.life != Worker::Life::running || w.ended) return false;
    for (std::size_t i = 0; i < w.active.size(); ++i) {
        if (w.active[i].tag != tag) continue;
        auto* rec = reinterpret_cast<RecordHeader*>(w.slot.request + w.offsets[i]);
        std::atomic_ref<std::uint32_t> state(rec->state);
        std::uint32_t expected = record_queued;
        if (state.compare_exchange_strong(expected, record_canceled)) return true;
        if (expected != record_running) return false;
        if (!state.compare_exchange_strong(expected, record_kill_requested)) return false;
        int reason = kill_none;
        w.kill_reason.compare_exchange_strong(reason, kill_requested);
        send_kill(w.pidfd);
        return true;
    }
    return false;
}

double WorkerProcesses::progress(std::size_t k) const noexcept {
    if (k >= slots_.count()) return 0.0;
    return workers_[k].slot.control->progress.load(std::memory_order_relaxed);
}

std::uint32_t WorkerProcesses::progress_record(std::size_t k) const noexcept {
    if (k >= slots_.count()) return 0;
    return workers_[k].slot.control->progress_record.load(std::memory_order_relaxed);
}

CallOutcome WorkerProcesses::call(std::size_t k, std::uint32_t task_index, FunctionRef<void(ByteWriter&)> write_args,
                                 FunctionRef<void(ByteReader&)> read_result,
                                 std::optional<std::chrono::steady_clock::time_point> deadline) {
    CallRequest request{task_index, write_args, read_result, 0, {}};
    call_batch(k, std::span<CallRequest>(&request, 1), deadline);
    return std::move(request.outcome);
}

void WorkerProcesses::call_batch(std::size_t slot, std::span<CallRequest> batch,
                                std::optional<std::chrono::steady_clock::time_point> deadline) {
    if (batch.empty()) return;
    std::optional<Flight> flight = begin_batch(slot, batch, deadline, no_bell, false);
    if (!flight) {
        // Its worker died after the caller last looked (running()): the
        // batch never reached a worker, like one whose worker died before
        // taking it, and is carried again the same way.
        for (CallRequest& r : batch) r.outcome = CallOutcome{};
        return;
    }
    while (!advance_batch(slot, batch, *flight, true)) {
    }
    if (flight->decode_error) std::rethrow_exception(flight->decode_error);
}

std::optional<WorkerProcesses::Flight> WorkerProcesses::begin_batch(
    std::size_t k, std::span<CallRequest> batch, std::optional<std::chrono::steady_clock::time_point> deadline,
    std::uint32_t bell, bool claimable) {
    Worker& w = worker(k);
    const SlotView s = w.slot;
    SlotControl& c = *s.control;

    // Encode outside the lock: the request buffer is this caller's alone
    // until the post (whether or not a worker runs there), and encoding is
    // user code of any length.
    std::vector<std::size_t> offsets = std::move(w.spare_offsets);
    offsets.clear();
    std::size_t in = sizeof(RequestHeader);
    std::size_t count = 0;
    SegmentOwner args_segment;
    for (; count < batch.size(); ++count) {
        CallRequest& r = batch[count];
        r.outcome = CallOutcome{};
        if (s.capacity - in < sizeof(RecordHeader)) break;
        // Measures past its end rather than throw: this may run on a fiber's stack.
        ByteWriter writer(s.request + in + sizeof(RecordHeader), s.capacity - in - sizeof(RecordHeader),
                          Overflow::measure);
        std::uint32_t flags = 0;
        try {
            r.write_args(writer);
        } catch (...) {
            // An encoder that failed: refuse a lone request; in a batch,
            // send what came before it and leave the rest not_run.
            if (count == 0) throw;
            break;
        }
        if (writer.overflowed()) {
            // Too large for what is left: the first record of a request
            // crosses through a segment; a later one goes first in the next.
            if (count != 0) break;
            args_segment = write_args_segment(r, writer, slots_.owner());
            flags = value_in_segment;
        }
        const std::size_t need = sizeof(RecordHeader) + pad8(writer.size());
        if (need > s.capacity - in) break;  // padding made it overflow
        auto* rec = reinterpret_cast<RecordHeader*>(s.request + in);
        rec->task_index = r.task_index;
        rec->args_size = static_cast<std::uint32_t>(writer.size());
        rec->flags = flags;
        std::atomic_ref<std::uint32_t>(rec->state).store(record_queued, std::memory_order_relaxed);
        offsets.push_back(in);
        in += need;
    }
    for (std::size_t i = count; i < batch.size(); ++i) batch[i].outcome = CallOutcome{};  // not_run

    auto* head = reinterpret_cast<RequestHeader*>(s.request);
    {
        std::lock_guard lock(mutex_);
        if (w.life != Worker::Life::running || w.ended || w.kill_reason.load() == kill_retire) {
            w.spare_offsets = std::move(offsets);
            return std::nullopt;
        }
        head->seq = ++w.seq;
        head->count = static_cast<std::uint32_t>(count);
        head->bell = bell;
        std::atomic_ref<std::uint32_t>(head->answer_claim)
            .store(claimable ? answer_open : answer_fixed, std::memory_order_relaxed);
        w.active = batch.first(count);
        w.offsets.swap(offsets);
        w.bell = bell;
    }
    w.spare_offsets = std::move(offsets);  // the last batch's, kept for the next
    c.chunk_count.store(0, std::memory_order_relaxed);
    c.chunk_state.store(chunk_writing, std::memory_order_relaxed);
    ::sem_post(&c.request);  // release: the worker sees everything written above

    Flight f;
    f.args_segment = std::move(args_segment);
    f.count = count;
    f.timer = deadline.has_value();
    if (f.timer) f.until = to_timespec(*deadline);
    return f;
}

bool WorkerProcesses::claim_answer(std::size_t k) noexcept {
    auto* head = reinterpret_cast<RequestHeader*>(workers_[k].slot.request);
    std::uint32_t open = answer_open;
    return std::atomic_ref<std::uint32_t>(head->answer_claim)
        .compare_exchange_strong(open, answer_waited, std::memory_order_acq_rel);
}

bool WorkerProcesses::answer_posted(std::size_t k) const noexcept {
    auto* head = reinterpret_cast<RequestHeader*>(workers_[k].slot.request);
    return std::atomic_ref<std::uint32_t>(head->answer_claim).load(std::memory_order_seq_cst) ==
           detail::answer_posted;
}

void WorkerProcesses::unclaimable(std::size_t k) noexcept {
    auto* head = reinterpret_cast<RequestHeader*>(workers_[k].slot.request);
    std::atomic_ref<std::uint32_t>(head->answer_claim).store(answer_fixed, std::memory_order_relaxed);
}

bool WorkerProcesses::response_waiting(std::size_t k) const noexcept {
    int value = 0;
    ::sem_getvalue(&workers_[k].slot.control->response, &value);
    return value > 0;
}

bool WorkerProcesses::advance_batch(std::size_t k, std::span<CallRequest> batch, Flight& f, bool block) {
    Worker& w = workers_[k];
    const SlotView s = w.slot;
    SlotControl& c = *s.control;
    for (;;) {
        const int r = !block   ? ::sem_trywait(&c.response)
                      : f.timer ? ::sem_clockwait(&c.response, CLOCK_MONOTONIC, &f.until)
                                : ::sem_wait(&c.response);
        if (r != 0) {
            if (errno == EAGAIN && !block) return false;
            if (errno == ETIMEDOUT) {
                f.timer = false;
                std::lock_guard lock(mutex_);
                if (!w.ended) {
                    int expected = kill_none;
                    w.kill_reason.compare_exchange_strong(expected, kill_timeout);
                    send_kill(w.pidfd);
                }
            }
            continue;  // EINTR, or wait for the killed worker to be reaped
        }
        // The state first: chunk_final, once seen, makes the final count visible.
        const std::uint32_t state = c.chunk_state.load(std::memory_order_acquire);
        const std::uint32_t n = c.chunk_count.load(std::memory_order_acquire);
        for (; f.taken < n; ++f.taken) {
            ResultHeader rh;
            std::memcpy(&rh, s.response + f.out, sizeof rh);
            const std::byte* payload = s.response + f.out + sizeof rh;
            f.out += sizeof rh + pad8(rh.size);
            if (rh.record >= f.count) continue;  // cannot happen with a sane worker
            CallRequest& req = batch[rh.record];
            CallOutcome& o = req.outcome;
            o.started = rh.status != result_canceled;
            ByteReader reader(payload, rh.size);
            try {
                if (rh.status == result_ok && (rh.flags & value_in_segment) != 0) {
                    o.kind = CallOutcome::Kind::ok;
                    read_result_segment(req, reader, k, c);
                } else if (rh.status == result_ok) {
                    o.kind = CallOutcome::Kind::ok;
                    req.read_result(reader);
                } else if (rh.status == result_error) {
                    o.kind = CallOutcome::Kind::remote_error;
                    o.error_type = read_string(reader);
                    o.error_message = read_string(reader);
                } else {
                    o.kind = CallOutcome::Kind::canceled;
                }
            } catch (...) {
                if (!f.decode_error) f.decode_error = std::current_exception();
            }
            f.next = rh.record + 1;
        }
        const bool ended = w.ended.load(std::memory_order_acquire);
        const bool doomed = w.kill_reason.load(std::memory_order_relaxed) != kill_none;
        if (state == chunk_final && (ended || !doomed)) break;
        if (ended) {
            // Results published before the death are in; the record that was
            // running gets the cause, records never started are not_run.
            for (std::size_t i = f.next; i < f.count; ++i) {
                const auto* rec = reinterpret_cast<RecordHeader*>(s.request + w.offsets[i]);
                const std::uint32_t st =
                    std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(rec->state)).load();
                CallOutcome& o = batch[i].outcome;
                if (st == record_canceled) {
                    o.kind = CallOutcome::Kind::canceled;
                } else if (st != record_queued) {
                    o = w.death;
                    o.started = true;
                }
            }
            break;
        }
        if (doomed) continue;  // a kill is on its way: wait for the reaper's post
        if (state == chunk_more) {
            c.chunk_count.store(0, std::memory_order_relaxed);
            c.chunk_state.store(chunk_writing, std::memory_order_relaxed);
            f.taken = 0;
            f.out = 0;
            ::sem_post(&c.request);
        }
    }
    {
        std::lock_guard lock(mutex_);
        w.active = {};
        w.bell = no_bell;
    }
    f.args_segment.release();
    // Result segments the worker made and nobody read: it died making one,
    // or before its result was posted. Nothing more is made: it is dead or
    // waits for the next request.
    if (c.segments_made.load(std::memory_order_acquire) != c.segments_removed) remove_result_segments(k, c);
    return true;
}

void WorkerProcesses::read_result_segment(CallRequest& req, ByteReader& payload, std::size_t k, SlotControl& c) {
    SegmentRef ref{};
    payload.read(&ref, sizeof ref);
    // Its name goes at once, whatever the decoding does.
    const SegmentIn in(result_segment_name(slots_.owner(), k, c.generation, ref.number), ref.size, true);
    if (ref.number > c.segments_removed) c.segments_removed = ref.number;
    ByteReader reader = in.reader();
    req.read_result(reader);
}

void WorkerProcesses::remove_result_segments(std::size_t k, SlotControl& c) noexcept {
    const std::uint64_t made = c.segments_made.load(std::memory_order_acquire);
    for (std::uint64_t n = c.segments_removed + 1; n <= made; ++n)
        remove_segment(result_segment_name(slots_.owner(), k, c.generation, n));
    c.segments_removed = made;
}

void WorkerProcesses::stop() noexcept {
    std::unique_lock lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    for (std::size_t k = 0; k < slots_.count(); ++k) {
        Worker& w = workers_[k];
        if (w.life == Worker::Life::running && !w.ended) {
            int expected = kill_none;
            w.kill_reason.compare_exchange_strong(expected, kill_retire);
            send_kill(w.pidfd);
        }
    }
    changed_.wait(lock, [&] {
        for (std::size_t k = 0; k < slots_.count(); ++k) {
            const Worker& w = workers_[k];
            if (w.life == Worker::Life::spawning || (w.life == Worker::Life::running && !w.ended)) return false;
        }
        return true;
    });
    lock.unlock();
    const std::uint64_t one = 1;
    if (::write(wake_, &one, sizeof one) < 0) log(LogLevel::error, "cannot wake the process pool's reaper thread");
    if (reaper_.joinable()) reaper_.join();
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, zygote_.socket(), nullptr);
    ::close(wake_);
    ::close(epoll_);
    wake_ = epoll_ = -1;
}

void WorkerProcesses::reaper_loop() noexcept {
    epoll_event events[16];
    for (;;) {
        const int n = ::epoll_wait(epoll_, events, 16, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            log(LogLevel::critical, "the process pool's reaper stopped: epoll_wait failed: {}", ::strerror(errno));
            return;
        }
        for (int i = 0; i < n; ++i) {
            const std::uint64_t key = events[i].data.u64;
            if (key == wake_key) return;
            if (key == zygote_key) {
                for (;;) {
                    ZygoteReply reply{};
                    int fd = -1;
                    const int got = zygote_.receive(reply, fd);
                    if (got == 0) break;
                    if (got < 0) {
                        ::epoll_ctl(epoll_, EPOLL_CTL_DEL, zygote_.socket(), nullptr);
                        on_zygote_lost();
                        break;
                    }
                    on_reply(reply, fd);
                }
            } else {
                on_pidfd(static_cast<std::size_t>(key - first_worker_key));
            }
        }
    }
}

void WorkerProcesses::on_reply(const ZygoteReply& reply, int fd) {
    std::unique_lock lock(mutex_);
    if (reply.slot >= slots_.count()) {
        if (fd >= 0) ::close(fd);
        return;
    }
    const std::size_t k = reply.slot;
    Worker& w = workers_[k];
    if (reply.generation != w.generation) {  // cannot happen: slots are reused only after the end is reported
        if (fd >= 0) ::close(fd);
        return;
    }
    switch (reply.op) {
        case ZygoteReply::spawned: {
            if (fd < 0 || w.life != Worker::Life::spawning) {
                if (fd >= 0) ::close(fd);
                return;
            }
            w.pidfd = fd;
            w.pid = reply.pid;
            w.life = Worker::Life::running;
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.u64 = first_worker_key + k;
            if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
                // Without a watch its death would go unseen: end it now.
                log(LogLevel::error, "cannot watch worker process {}: {}; killing it", reply.pid, ::strerror(errno));
                send_kill(fd);
                w.pidfd_fired = true;
            }
            changed_.notify_all();
            break;
        }
        case ZygoteReply::spawn_failed:
            if (fd >= 0) ::close(fd);
            if (w.life == Worker::Life::spawning) {
                w.life = Worker::Life::none;
                w.spawn_errno = reply.value;
                changed_.notify_all();
            }
            break;
        case ZygoteReply::exited:
            if (fd >= 0) ::close(fd);
            w.status_known = true;
            w.wait_status = reply.value;
            if (w.pidfd_fired) finish(k, lock);
            break;
    }
}

void WorkerProcesses::on_pidfd(std::size_t k) {
    std::unique_lock lock(mutex_);
    Worker& w = workers_[k];
    if (w.pidfd < 0 || w.pidfd_fired) return;
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, w.pidfd, nullptr);
    w.pidfd_fired = true;
    // The zygote reports the wait status once it has reaped the worker, at
    // most one wake-up later; without a zygote the cause stays unknown.
    if (w.status_known || zygote_lost_) finish(k, lock);
}

void WorkerProcesses::on_zygote_lost() {
    std::unique_lock lock(mutex_);
    zygote_lost_ = true;
    log(LogLevel::error, "the process pool's zygote exited; no new worker process can start");
    for (std::size_t k = 0; k < slots_.count(); ++k) {
        Worker& w = workers_[k];
        if (w.life == Worker::Life::spawning) w.life = Worker::Life::none;
        if (w.life == Worker::Life::running && !w.ended && w.pidfd_fired) finish(k, lock);
    }
    changed_.notify_all();
}

void WorkerProcesses::finish(std::size_t k, std::unique_lock<std::mutex>& lock) {
    Worker& w = workers_[k];
    if (w.ended) return;
    CallOutcome& d = w.death;
    const int st = w.wait_status;
    if (!w.status_known) {
        d.error_type = "unknown";
        d.error_message = "worker process ended with the process pool's zygote; the cause is unknown";
    } else if (WIFSIGNALED(st)) {
        d.error_type = "signal";
        d.signal_or_exit = WTERMSIG(st);
        d.error_message =
            fmt::format("worker process killed by signal {} ({})", WTERMSIG(st), signal_name(WTERMSIG(st)));
    } else {
        d.error_type = "exit";
        d.signal_or_exit = WEXITSTATUS(st);
        d.error_message = fmt::format("worker process exited with code {}", WEXITSTATUS(st));
    }
    switch (w.kill_reason.load()) {
        case kill_timeout:
            d.kind = CallOutcome::Kind::timed_out;
            d.error_message = "the process task ran past its run timeout; its worker process was killed";
            break;
        case kill_requested:
        case kill_retire:
            d.kind = CallOutcome::Kind::killed;
            d.error_message = "the worker process was killed to cancel its task";
            break;
        default: d.kind = CallOutcome::Kind::died; break;
    }
    ::close(w.pidfd);
    w.pidfd = -1;
    w.life = Worker::Life::ended;
    w.ended.store(true, std::memory_order_release);
    ::sem_post(&w.slot.control->response);
    if (w.bell != no_bell && rings_after_post(*reinterpret_cast<RequestHeader*>(w.slot.request)))
        ring(slots_.doorbell(w.bell));
    changed_.notify_all();
    if (options_.on_exit) {
        const CallOutcome how = d;
        lock.unlock();
        try {
            options_.on_exit(k, how);
        } catch (const std::exception& e) {
            log(LogLevel::error, "the process pool's on_exit callback threw: {}", e.what());
        } catch (...) {
            log(LogLevel::error, "the process pool's on_exit callback threw");
        }
        lock.lock();
    }
}

}  // namespace atasker::detail
