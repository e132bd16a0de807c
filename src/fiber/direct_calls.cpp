#include "fiber/direct_calls.hpp"

#include <optional>
#include <span>
#include <utility>

#include <boost/fiber/context.hpp>

#include <atasker/init.hpp>
#include <atasker/log.hpp>

#include "process/process_lane.hpp"
#include "process/shm_slots.hpp"
#include "process/zygote.hpp"

namespace atasker::detail {

namespace {
[[gnu::tls_model("initial-exec")]] thread_local DirectCalls* current_calls = nullptr;
}  // namespace

struct DirectCalls::Call {
    // FunctionRef refers: the encoders live here, as long as the request.
    struct Write {
        const MpCall* call;
        void operator()(ByteWriter& out) const { call->write_args(call->context, out); }
    };
    struct Read {
        const MpCall* call;
        void operator()(ByteReader& in) const { call->read_result(call->context, in); }
    };

    Call() = default;
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;

    DirectHost* host = nullptr;
    WorkerProcesses* workers = nullptr;
    TaskBase* task = nullptr;
    ThreadPool::Sleeper* borrowed = nullptr;
    std::size_t slot = 0;
    MpCall call{};
    Write write{&call};
    Read read{&call};
    CallRequest request{.task_index = 0, .write_args = write, .read_result = read};
    WorkerProcesses::Flight flight{};
};

DirectCalls::DirectCalls() {
    if (!initialized()) return;
    shared_bell_ = runtime_slots().claim_doorbell();
    if (shared_bell_ != no_bell) bell_ = &runtime_slots().doorbell(shared_bell_);
}

DirectCalls::~DirectCalls() {
    if (shared_bell_ != no_bell) runtime_slots().release_doorbell(shared_bell_);
}

DirectCalls* DirectCalls::current() noexcept { return current_calls; }
void DirectCalls::set_current(DirectCalls* calls) noexcept { current_calls = calls; }

void DirectCalls::start(DirectHost& host, WorkerProcesses& workers, TaskBase* task, ThreadPool::Sleeper* borrowed,
                        const MpCall& call) noexcept {
    std::unique_ptr<Call> c;
    try {
        if (spare_.empty()) {
            c = std::make_unique<Call>();
        } else {
            c = std::move(spare_.back());
            spare_.pop_back();
        }
        calls_.reserve(calls_.size() + 1);  // nothing can fail once the request is sent
    } catch (...) {
        host.requeue_direct(task, borrowed);
        return;
    }
    c->host = &host;
    c->workers = &workers;
    c->task = task;
    c->borrowed = borrowed;
    c->slot = static_cast<std::size_t>(borrowed->binding);
    c->call = call;
    c->request.task_index = call.task_index;
    c->request.tag = call.id;
    call.running_slot->store(static_cast<int>(c->slot), std::memory_order_release);
    std::optional<WorkerProcesses::Flight> flight;
    try {
        flight = workers.begin_batch(c->slot, std::span(&c->request, 1), std::nullopt, shared_bell_);
    } catch (...) {
        call.running_slot->store(-1, std::memory_order_release);
        if (!workers.running(c->slot)) {  // it died just now
            host.requeue_direct(task, borrowed);
            return;
        }
        task->set_error(std::current_exception());  // the arguments do not fit, or could not be encoded
        host.finish_direct(task, borrowed, -1.0);
        return;
    }
    if (!flight) {  // the worker died since its last task: a pool thread replaces it
        call.running_slot->store(-1, std::memory_order_release);
        host.requeue_direct(task, borrowed);
        return;
    }
    c->flight = std::move(*flight);
    calls_.push_back(std::move(c));
    // Where the loop shares its CPU with the worker, the worker usually ran
    // within the post and has answered already: completing here fulfils the
    // future before the fiber waits on it, with no switch to the server.
    (void)try_complete(calls_.size() - 1);
}

bool DirectCalls::has_work() const noexcept {
    if (closing_ && calls_.empty()) return true;
    for (const auto& c : calls_)
        if (c->workers->response_waiting(c->slot)) return true;
    return false;
}

boost::fibers::context* DirectCalls::wake_server() noexcept {
    if (parked_ == nullptr || !has_work()) return nullptr;
    return std::exchange(parked_, nullptr);
}

void DirectCalls::serve() {
    serving_ = true;
    for (;;) {
        complete_ready();
        if (closing_ && calls_.empty()) break;
        if (!has_work()) {
            // Parked outside any wait queue: the scheduler makes it ready
            // (wake_server) once an answer or the close arrives.
            parked_ = boost::fibers::context::active();
            parked_->suspend();
        }
    }
    serving_ = false;
}

void DirectCalls::complete_ready() {
    for (std::size_t i = 0; i < calls_.size();)
        if (!try_complete(i)) ++i;
}

bool DirectCalls::try_complete(std::size_t i) noexcept {
    Call& c = *calls_[i];
    // Without blocking: false at once when no answer has been posted.
    if (!c.workers->advance_batch(c.slot, std::span(&c.request, 1), c.flight, false)) return false;
    std::unique_ptr<Call> ended = std::move(calls_[i]);
    calls_[i] = std::move(calls_.back());
    calls_.pop_back();
    end(*ended, std::exchange(ended->flight.decode_error, nullptr));
    try {
        spare_.push_back(std::move(ended));
    } catch (...) {
        // Not kept for reuse: freed here.
    }
    return true;
}

void DirectCalls::end(Call& c, std::exception_ptr error) noexcept {
    c.call.running_slot->store(-1, std::memory_order_release);
    const CallOutcome& o = c.request.outcome;
    if (!error && never_reached(o)) {
        c.host->requeue_direct(c.task, c.borrowed);
        return;
    }
    TaskStatus status = TaskStatus::failed;
    if (!error) {
        try {
            error = failure_of(o, c.call);
            status = failure_status(o);
        } catch (...) {  // no memory for the message
            error = std::current_exception();
        }
    }
    if (error) c.task->set_error(std::move(error), status);
    c.host->finish_direct(c.task, c.borrowed, c.workers->progress(c.slot));
}

}  // namespace atasker::detail
