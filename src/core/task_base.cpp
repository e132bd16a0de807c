#include <atasker/detail/task_base.hpp>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <atasker/error.hpp>
#include <atasker/log.hpp>

#include "core/wait_hook.hpp"

namespace atasker::detail {
namespace {

// The calling thread's way of waiting without blocking; see wait_hook.hpp.
[[gnu::tls_model("initial-exec")]] thread_local WaitHook* wait_hook = nullptr;

// Waiters park on one of a few mutex/condition pairs picked by the task's
// address, so a task costs a byte of state instead of its own pair.
// Watchers hang in lists, also picked by the task's address, each guarded by
// the stripe of its task; many more lists than stripes, so that ending a
// task walks few watchers of others (as_completed over 100k tasks).
struct Stripe {
    std::mutex mutex;
    std::condition_variable cv;
};
constexpr std::size_t stripe_count = 64;
constexpr std::size_t bucket_count = 4096;  // a multiple of stripe_count

struct Parking {
    std::array<Stripe, stripe_count> stripes;
    std::array<TaskWatcher*, bucket_count> buckets{};
};

Parking& parking() noexcept {
    // Never destroyed: tasks end while the default supervisor stops at exit.
    static auto* p = new Parking;
    return *p;
}

void log_message_if(LogLevel level, const std::string& line) noexcept {
    if (log_enabled(level)) log_message(level, line);
}

std::size_t bucket_of(const void* p) noexcept {
    // Tasks are 64-byte aligned at most; their low bits say nothing.
    const auto bits = reinterpret_cast<std::uintptr_t>(p) >> 5;
    return (bits ^ (bits >> 12)) % bucket_count;
}

Stripe& stripe_of(const void* p) noexcept {
    return parking().stripes[bucket_of(p) % stripe_count];
}

// The log lines of failures that a handle may still receive, until it does
// or the last reference goes: few at a time (failures with a handle left),
// and never on the path of a task that completed.
struct Unreceived {
    std::mutex mutex;
    std::unordered_map<const TaskBase*, std::string> lines;
};

Unreceived& unreceived() noexcept {
    // Never destroyed: handles are released while the program exits.
    static auto* u = new Unreceived;
    return *u;
}

bool keep_unreceived(const TaskBase* task, const std::string& line) noexcept {
    try {
        auto& u = unreceived();
        std::lock_guard lock(u.mutex);
        u.lines.insert_or_assign(task, line);
        return true;
    } catch (...) {  // no memory to keep it
        return false;
    }
}

std::string take_unreceived(const TaskBase* task) noexcept {
    try {
        auto& u = unreceived();
        std::lock_guard lock(u.mutex);
        auto node = u.lines.extract(task);
        return node.empty() ? std::string{} : std::move(node.mapped());
    } catch (...) {
        return {};
    }
}

}  // namespace

TaskBase::~TaskBase() {
    if (has_error()) {
        if ((state_.load(std::memory_order_relaxed) & (received_bit | unreceived_bit)) == unreceived_bit) {
            // The last handle went and nobody received the failure.
            if (const std::string line = take_unreceived(this); !line.empty()) log_message(LogLevel::error, line);
        }
        std::destroy_at(&error_);
    }
}

void TaskBase::note_received() const noexcept {
    const auto previous = state_.fetch_or(received_bit, std::memory_order_acq_rel);
    if ((previous & (received_bit | unreceived_bit)) == unreceived_bit) (void)take_unreceived(this);
}

void TaskBase::report_failure(const std::string& line) noexcept {
    // The count first: a handle that received the error and was then
    // dropped set the bit before its release, which this load sees.
    const bool no_handle_left = refs_.load(std::memory_order_acquire) == 1;  // the caller's is the last
    if ((state_.load(std::memory_order_acquire) & received_bit) != 0) {
        log_message_if(LogLevel::debug, line);
        return;
    }
    if (no_handle_left) {
        log_message(LogLevel::error, line);
        return;
    }
    log_message_if(LogLevel::debug, line);
    if (!keep_unreceived(this, line)) {
        log_message(LogLevel::error, line);
        return;
    }
    // A handle that received the error before the bit was set did not see
    // it, so did not take the line back: it is taken back here.
    if ((state_.fetch_or(unreceived_bit, std::memory_order_acq_rel) & received_bit) != 0) (void)take_unreceived(this);
}

void TaskBase::mark_done() noexcept {
    auto previous = state_.fetch_or(done_bit, std::memory_order_acq_rel);
    if ((previous & waiters_bit) == 0) return;
    // Takes this task's watchers out of their list under the stripe, and
    // tells them after releasing it: a watcher may wait for or watch other
    // tasks, whose stripe may be this one.
    TaskWatcher* mine = nullptr;
    {
        auto& s = stripe_of(this);
        std::lock_guard lock(s.mutex);
        s.cv.notify_all();
        for (TaskWatcher** p = &parking().buckets[bucket_of(this)]; *p != nullptr;) {
            TaskWatcher* w = *p;
            if (w->task_ == this) {
                *p = w->next_;
                w->next_ = mine;
                mine = w;
            } else {
                p = &w->next_;
            }
        }
    }
    // Registered order: the list holds the newest first, and was reversed above.
    while (mine != nullptr) {
        TaskWatcher* w = mine;
        mine = w->next_;
        w->task_ = nullptr;
        w->next_ = nullptr;
        w->task_ended();  // may destroy w
    }
}

bool TaskBase::watch(TaskWatcher& w) const noexcept {
    assert(w.task_ == nullptr);
    if (is_done()) return false;
    auto& s = stripe_of(this);
    std::lock_guard lock(s.mutex);
    if ((state_.fetch_or(waiters_bit, std::memory_order_acq_rel) & done_bit) != 0) return false;
    TaskWatcher*& head = parking().buckets[bucket_of(this)];
    w.task_ = this;
    w.next_ = head;
    head = &w;
    return true;
}

bool TaskBase::unwatch(TaskWatcher& w) const noexcept {
    auto& s = stripe_of(this);
    std::lock_guard lock(s.mutex);
    for (TaskWatcher** p = &parking().buckets[bucket_of(this)]; *p != nullptr; p = &(*p)->next_) {
        if (*p == &w) {
            *p = w.next_;
            w.task_ = nullptr;
            w.next_ = nullptr;
            return true;
        }
    }
    return false;
}

void set_wait_hook(WaitHook* hook) noexcept { wait_hook = hook; }
bool wait_hook_installed() noexcept { return wait_hook != nullptr; }

void TaskBase::wait() const noexcept {
    if (is_done()) return;
    if (WaitHook* hook = wait_hook; hook != nullptr && hook->wait_until(*this, nullptr).has_value()) return;
    auto& s = stripe_of(this);
    std::unique_lock lock(s.mutex);
    state_.fetch_or(waiters_bit, std::memory_order_acq_rel);
    s.cv.wait(lock, [this] { return is_done(); });
}

bool TaskBase::wait_until(std::chrono::steady_clock::time_point deadline) const noexcept {
    if (is_done()) return true;
    if (WaitHook* hook = wait_hook; hook != nullptr) {
        if (const auto ended = hook->wait_until(*this, &deadline)) return *ended;
    }
    auto& s = stripe_of(this);
    std::unique_lock lock(s.mutex);
    state_.fetch_or(waiters_bit, std::memory_order_acq_rel);
    return s.cv.wait_until(lock, deadline, [this] { return is_done(); });
}

void throw_task_failed(const TaskBase& task, std::string name, std::size_t index) {
    const std::string what =
        fmt::format("task {} '{}' ({}) {}: {}", task.id, name, task.type,
                    task.end_status() == TaskStatus::canceled ? "was canceled" : "failed", describe(task.error()));
    try {
        std::rethrow_exception(task.error());
    } catch (...) {
        throw TaskFailedError(task.id, std::move(name), index, what);  // nests what is being handled
    }
}

std::string describe(const std::exception_ptr& e) {
    if (!e) return {};
    try {
        std::rethrow_exception(e);
    } catch (const RemoteError& ex) {
        return ex.type_name() + ": " + ex.what();
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown exception (not derived from std::exception)";
    }
}

}  // namespace atasker::detail
