#include "process/process_lane.hpp"

#include <algorithm>
#include <atomic>

#include <fmt/chrono.h>

#include <atasker/detail/mp_call.hpp>
#include <atasker/detail/mp_registry.hpp>
#include <atasker/error.hpp>
#include <atasker/init.hpp>
#include <atasker/log.hpp>


namespace atasker::detail {
namespace {

std::atomic<MpPool*> current_pool{nullptr};
[[gnu::tls_model("initial-exec")]] thread_local int bound_slot = -1;

WorkerProcesses::Options worker_options() {
    if (!initialized()) init();
    check_mp_registry();
    return {};
}

// A call that never reached its worker (it died or was killed just before)
// is carried again, on a fresh worker, at most this many times.
constexpr int max_carries = 3;

}  // namespace

MpPool::MpPool() : workers_(std::in_place, worker_options()) {
    MpPool* expected = nullptr;
    if (!current_pool.compare_exchange_strong(expected, this))
        throw Error("another supervisor already runs a process pool; only one can at a time");
    for (std::size_t k = workers_->slot_count(); k > 0; --k) free_slots_.push_back(k - 1);
}

MpPool::~MpPool() {
    current_pool.store(nullptr);
    workers_.reset();  // kills and reaps every worker; the zygote stays (see at::shutdown())
}

int MpPool::attach_thread() noexcept {
    std::size_t slot = 0;
    {
        std::lock_guard lock(mutex_);
        if (free_slots_.empty()) {
            log(LogLevel::error, "process pool: no free worker slot for a new pool thread; raise "
                                 "InitOptions::max_workers in at::init()");
            return -1;
        }
        slot = free_slots_.back();
        free_slots_.pop_back();
    }
    bound_slot = static_cast<int>(slot);
    try {
        workers_->spawn(slot);
    } catch (const std::exception& e) {
        // The first task on this thread tries again and fails with the reason.
        log(LogLevel::error, "process pool: could not start a worker process: {}", e.what());
    }
    return bound_slot;
}

void MpPool::detach_thread() noexcept {
    if (bound_slot < 0) return;
    const auto slot = static_cast<std::size_t>(bound_slot);
    bound_slot = -1;
    try {
        workers_->retire(slot);
    } catch (const std::exception& e) {
        log(LogLevel::error, "process pool: could not end worker process on slot {}: {}", slot, e.what());
    }
    std::lock_guard lock(mutex_);
    free_slots_.push_back(slot);
}

void run_mp_call(const MpCall& call, const Progress& progress) {
    MpPool* pool = current_pool.load();
    if (pool == nullptr || bound_slot < 0)
        throw Error("process task has no worker process; the process pool could not start one (see the log)");
    auto& workers = pool->workers();
    const auto slot = static_cast<std::size_t>(bound_slot);
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (call.timeout.count() > 0) deadline = std::chrono::steady_clock::now() + call.timeout;

    // FunctionRef refers, so the callables must outlive the request.
    auto write = [&](ByteWriter& out) { call.write_args(call.context, out); };
    auto read = [&](ByteReader& in) { call.read_result(call.context, in); };
    CallRequest request{.task_index = call.task_index, .write_args = write, .read_result = read, .tag = call.id};
    for (int carry = 0;; ++carry) {
        if (!workers.running(slot)) workers.replace(slot);  // the last one died: a fresh worker
        request.outcome = {};
        call.running_slot->store(bound_slot, std::memory_order_release);
        workers.call_batch(slot, std::span(&request, 1), deadline);
        call.running_slot->store(-1, std::memory_order_release);
        if (never_reached(request.outcome) && carry < max_carries) continue;
        const double p = workers.progress(slot);
        if (p > 0.0 && p <= 1.0) progress.report(p);
        if (never_reached(request.outcome))
            throw Error(fmt::format("process task {} could not reach a worker process after {} tries", call.id,
                                    max_carries + 1));
        if (auto failure = failure_of(request.outcome, call)) std::rethrow_exception(failure);
        return;
    }
}

bool never_reached(const CallOutcome& o) noexcept {
    return o.kind == CallOutcome::Kind::not_run || (o.kind == CallOutcome::Kind::killed && !o.started) ||
           (o.kind == CallOutcome::Kind::died && !o.started);
}

std::exception_ptr failure_of(const CallOutcome& o, const MpCall& call) {
    switch (o.kind) {
        case CallOutcome::Kind::ok: return nullptr;
        case CallOutcome::Kind::remote_error:
        case CallOutcome::Kind::died: return std::make_exception_ptr(RemoteError(o.error_type, o.error_message));
        case CallOutcome::Kind::timed_out:
            return std::make_exception_ptr(TimeoutError(
                fmt::format("process task {} ran longer than its timeout of {}; its worker process was killed",
                            call.id, std::chrono::duration_cast<std::chrono::milliseconds>(call.timeout))));
        case CallOutcome::Kind::killed:
        case CallOutcome::Kind::canceled:
            return std::make_exception_ptr(CanceledError(
                fmt::format("process task {} was canceled while running; its worker process was killed", call.id)));
        case CallOutcome::Kind::not_run: break;
    }
    return std::make_exception_ptr(Error(fmt::format("process task {} never reached a worker process", call.id)));
}

TaskStatus failure_status(const CallOutcome& o) noexcept {
    return o.kind == CallOutcome::Kind::killed || o.kind == CallOutcome::Kind::canceled ? TaskStatus::canceled
                                                                                       : TaskStatus::failed;
}

bool cancel_mp_call(int slot, TaskId id) noexcept {
    MpPool* pool = current_pool.load();
    if (pool == nullptr || slot < 0) return false;
    return pool->workers().cancel(static_cast<std::size_t>(slot), id);
}

float mp_call_progress(int slot) noexcept {
    MpPool* pool = current_pool.load();
    if (pool == nullptr || slot < 0) return -1.0F;
    return static_cast<float>(pool->workers().progress(static_cast<std::size_t>(slot)));
}

}  // namespace atasker::detail
