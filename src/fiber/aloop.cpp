#include <atasker/aloop.hpp>

#include <pthread.h>

#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <boost/fiber/all.hpp>

#include <atasker/log.hpp>

#include "fiber/direct_calls.hpp"
#include "fiber/fiber_wait.hpp"
#include "fiber/loop_scheduler.hpp"
#include "sync/system_error.hpp"

namespace atasker {

struct ALoop::Impl {
    std::string name;
    ALoopOptions options;

    // Shared with putting threads. The loop's main fiber parks while there
    // is nothing to start, so the loop's other fibers keep running
    // meanwhile; a post wakes it through the loop's doorbell.
    mutable std::mutex mutex;
    detail::ParkedFiber inbox;
    // The thread's direct calls, made with it: their doorbell is the one the
    // loop sleeps on, so posts ring it.
    std::shared_ptr<detail::DirectCalls> calls;
    std::deque<detail::FiberJob> jobs;
    bool active = false;
    bool stopping = false;
    std::thread thread;

    void loop(std::shared_ptr<detail::DirectCalls> calls) noexcept;
};

void ALoop::Impl::loop(std::shared_ptr<detail::DirectCalls> calls) noexcept {
    // The loop sleeps on a doorbell that worker processes can ring, and a
    // server fiber completes the process tasks its fibers carry to workers
    // themselves (see direct_calls.hpp).
    boost::fibers::use_scheduling_algorithm<detail::LoopScheduler>(calls, inbox);
    // Task::get() and wait() in a fiber suspend that fiber, not the thread.
    detail::FiberWait fiber_wait;
    detail::set_wait_hook(&fiber_wait);
    std::optional<boost::fibers::fiber> server;
    try {
        server.emplace(std::allocator_arg, boost::fibers::fixedsize_stack(options.stack_size),
                       [&calls] { calls->serve(); });
        detail::DirectCalls::set_current(calls.get());
    } catch (const std::exception& e) {
        log(LogLevel::warning, "aloop '{}' awaits process tasks through pool threads: {}", name, e.what());
    }
    // Touched by this thread's fibers only.
    std::size_t live = 0;
    boost::fibers::mutex live_mutex;
    boost::fibers::condition_variable live_cv;
    for (;;) {
        std::deque<detail::FiberJob> batch;
        inbox.clear();
        bool stop_now = false;
        {
            std::lock_guard lock(mutex);
            batch.swap(jobs);
            stop_now = batch.empty() && stopping;  // everything put before the stop has started
        }
        if (stop_now) break;
        if (batch.empty()) {
            inbox.park();  // the loop's other fibers run meanwhile
            continue;
        }
        for (auto& job : batch) {
            ++live;
            try {
                boost::fibers::fiber(std::allocator_arg, boost::fibers::fixedsize_stack(options.stack_size),
                                     [&live, &live_mutex, &live_cv, job = std::move(job)]() mutable {
                                         job();  // never throws: background_task() catches into the promise
                                         std::lock_guard l(live_mutex);
                                         if (--live == 0) live_cv.notify_all();
                                     })
                    .detach();
            } catch (const std::exception& e) {
                --live;
                log(LogLevel::error, "aloop '{}' could not start a fiber: {}", name, e.what());
            }
        }
    }
    {
        std::unique_lock lock(live_mutex);
        live_cv.wait(lock, [&live] { return live == 0; });
    }
    // A process task put by a fiber that did not wait for it ends here.
    calls->close();
    if (server) server->join();
    detail::DirectCalls::set_current(nullptr);
    detail::set_wait_hook(nullptr);
}

ALoop::ALoop(std::string name, ALoopOptions options) : impl_(std::make_unique<Impl>()) {
    if (options.stack_size < 16 * 1024)
        throw Error(fmt::format("aloop '{}': a stack size of {} bytes is too small; give at least 16384", name,
                                options.stack_size));
    impl_->name = std::move(name);
    impl_->options = options;
    start();
}

ALoop::~ALoop() { stop(true); }

void ALoop::start() {
    std::unique_lock lock(impl_->mutex);
    if (impl_->active) return;
    if (impl_->thread.joinable()) {
        if (impl_->thread.get_id() == std::this_thread::get_id())
            throw Error(fmt::format("aloop '{}' cannot be restarted from its own fibers; start it from another thread",
                                    impl_->name));
        // A stop(false) left the old thread finishing its fibers.
        std::thread old = std::move(impl_->thread);
        lock.unlock();
        old.join();
        lock.lock();
        if (impl_->active) return;
    }
    impl_->calls = std::make_shared<detail::DirectCalls>();
    impl_->stopping = false;
    impl_->active = true;
    try {
        impl_->thread = detail::start_thread(fmt::format("the aloop '{}'", impl_->name),
                                             [impl = impl_.get(), calls = impl_->calls] { impl->loop(calls); });
    } catch (...) {
        impl_->active = false;
        throw;
    }
    // Linux limits thread names to 15 characters.
    pthread_setname_np(impl_->thread.native_handle(), impl_->name.substr(0, 15).c_str());
}

void ALoop::stop(bool wait) {
    std::thread to_join;
    {
        std::lock_guard lock(impl_->mutex);
        impl_->active = false;
        impl_->stopping = true;
        // The thread keeps its own reference to its calls; letting go here
        // gives their doorbell back once it ends.
        if (impl_->calls) impl_->inbox.post(std::exchange(impl_->calls, nullptr)->bell());
        if (wait && impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id())
            to_join = std::move(impl_->thread);
    }
    if (to_join.joinable()) to_join.join();
}

bool ALoop::running_in_this_thread() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->thread.joinable() && impl_->thread.get_id() == std::this_thread::get_id();
}

bool ALoop::is_active() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->active;
}

const std::string& ALoop::name() const noexcept { return impl_->name; }

void ALoop::post(detail::FiberJob job) {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->active)
        throw Error(fmt::format("aloop '{}' is stopped; start() it (or create_aloop() again) before putting fibers",
                                impl_->name));
    impl_->jobs.push_back(std::move(job));
    impl_->inbox.post(impl_->calls->bell());
}

namespace {

/// The aloops of one supervisor; a Service so the supervisor's stop() stops
/// them (after the workers) and then this registry forgets them.
class ALoopRegistry final : public detail::Service {
public:
    explicit ALoopRegistry(TaskSupervisor* supervisor) : supervisor_(supervisor) {}
    ~ALoopRegistry() = default;
    ALoopRegistry(const ALoopRegistry&) = delete;
    ALoopRegistry& operator=(const ALoopRegistry&) = delete;

    void stop_service() noexcept override;
    [[nodiscard]] int stop_order() const noexcept override { return 1; }

    std::map<std::string, std::unique_ptr<ALoop>, std::less<>> loops;

private:
    TaskSupervisor* supervisor_;
};

// Every registry, by supervisor. One lock for all: aloops are created and
// looked up rarely.
struct Registries {
    std::mutex mutex;
    std::map<TaskSupervisor*, std::unique_ptr<ALoopRegistry>> by_supervisor;
    /// Registries stopped from a fiber of one of their own loops, which
    /// cannot destroy the loop it runs on: destroyed by the next stop or
    /// create_aloop() on another thread (or left to the process's end).
    std::vector<std::unique_ptr<ALoopRegistry>> retired;

    /// Under `mutex`: takes the retired registries this thread may destroy.
    std::vector<std::unique_ptr<ALoopRegistry>> take_retired();
};
Registries& registries() {
    // Never destroyed: the default supervisor, made before the first aloop,
    // is destroyed after it at exit, and its stop() stops the registries.
    static auto* r = new Registries;
    return *r;
}

std::vector<std::unique_ptr<ALoopRegistry>> Registries::take_retired() {
    std::vector<std::unique_ptr<ALoopRegistry>> out;
    std::erase_if(retired, [&out](std::unique_ptr<ALoopRegistry>& reg) {
        for (const auto& [name, loop] : reg->loops)
            if (loop->running_in_this_thread()) return false;
        out.push_back(std::move(reg));
        return true;
    });
    return out;
}

void ALoopRegistry::stop_service() noexcept {
    std::unique_ptr<ALoopRegistry> self;
    std::vector<std::unique_ptr<ALoopRegistry>> retired;  // destroyed on return, without the lock
    auto& r = registries();
    {
        std::lock_guard lock(r.mutex);
        retired = r.take_retired();
        auto it = r.by_supervisor.find(supervisor_);
        if (it == r.by_supervisor.end() || it->second.get() != this) return;
        self = std::move(it->second);
        r.by_supervisor.erase(it);
    }
    bool from_own_loop = false;
    for (auto& [name, loop] : loops) {
        from_own_loop = from_own_loop || loop->running_in_this_thread();
        loop->stop(true);  // from its own fiber: without waiting
    }
    supervisor_->detach_service(this);
    if (!from_own_loop) return;  // `self` destroys this registry and its stopped loops
    std::lock_guard lock(r.mutex);
    try {
        r.retired.push_back(std::move(self));
    } catch (...) {
        (void)self.release();  // no memory to keep it for later: left to the process's end
    }
}

}  // namespace

ALoop& TaskSupervisor::create_aloop(std::string name) { return create_aloop(std::move(name), ALoopOptions{}); }

ALoop& TaskSupervisor::create_aloop(std::string name, ALoopOptions options) {
    if (!is_active())
        throw Error(fmt::format("task supervisor is not started; call start() before create_aloop(\"{}\")", name));
    auto& r = registries();
    std::vector<std::unique_ptr<ALoopRegistry>> retired;  // destroyed on return, without the lock
    std::lock_guard lock(r.mutex);
    retired = r.take_retired();
    auto& registry = r.by_supervisor[this];
    if (!registry) {
        registry = std::make_unique<ALoopRegistry>(this);
        attach_service(registry.get());
    }
    if (auto it = registry->loops.find(name); it != registry->loops.end()) {
        if (it->second->is_active())
            throw Error(fmt::format("aloop '{}' already exists; use get_aloop(\"{}\") or stop it first", name, name));
        it->second->start();
        return *it->second;
    }
    auto loop = std::make_unique<ALoop>(name, options);
    ALoop& out = *loop;
    registry->loops.emplace(std::move(name), std::move(loop));
    return out;
}

ALoop* TaskSupervisor::get_aloop(std::string_view name) {
    auto& r = registries();
    std::lock_guard lock(r.mutex);
    auto reg = r.by_supervisor.find(this);
    if (reg == r.by_supervisor.end()) return nullptr;
    auto it = reg->second->loops.find(name);
    return it == reg->second->loops.end() ? nullptr : it->second.get();
}

bool TaskSupervisor::stop_aloop(std::string_view name, bool wait) {
    ALoop* loop = get_aloop(name);
    if (loop == nullptr) return false;
    loop->stop(wait);
    return true;
}

ALoop& default_aloop(TaskSupervisor& supervisor) {
    if (ALoop* loop = supervisor.get_aloop("default"); loop != nullptr && loop->is_active()) return *loop;
    try {
        return supervisor.create_aloop("default");
    } catch (const Error&) {
        // Another thread created it between the two calls.
        if (ALoop* loop = supervisor.get_aloop("default"); loop != nullptr && loop->is_active()) return *loop;
        throw;
    }
}

}  // namespace atasker
