#pragma once
/// \file aloop.hpp
/// ALoop: atasker's aloop, a named thread running a Boost.Fiber scheduler
/// (round robin). Fibers are started on it from any thread; a fiber that
/// waits on a boost::fibers::future, channel or mutex suspends only itself
/// while the loop's other fibers run.
///
///     at::ALoop& loop = at::task_supervisor.create_aloop("io");
///     boost::fibers::future<int> f = loop.background_task([] { return 42; });
///     int r = loop.run([] { return 6 * 7; });   // blocks this thread for the result
///
/// Aloops created by a supervisor are stopped by its stop(), after the
/// workers and before the pools drain, and are destroyed then. A fiber may
/// call that stop() itself: its own loop then stops without waiting for it,
/// and is destroyed later, from another thread. The default
/// aloop (default_aloop()) is the one named "default", created on first use.
/// Fibers get small non-protected stacks (ALoopOptions::stack_size, 64 KiB):
/// protected stacks hit the kernel's map-count limit at ~32k fibers.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <boost/fiber/future.hpp>

#include <atasker/error.hpp>
#include <atasker/export.hpp>
#include <atasker/supervisor.hpp>

namespace atasker {

/// How an aloop is built.
struct ALoopOptions {
    /// Stack size of each fiber (a boost::fibers::fixedsize_stack, not
    /// guard-paged). Deep recursion in a fiber needs more.
    std::size_t stack_size = 64 * 1024;
};

namespace detail {
/// A move-only job: what runs as one fiber on the loop.
class FiberJob {
public:
    template <class F>
    explicit FiberJob(F fn) : impl_(std::make_unique<Impl<F>>(std::move(fn))) {}
    void operator()() { impl_->call(); }

private:
    struct Base {
        virtual ~Base() = default;
        virtual void call() = 0;
    };
    template <class F>
    struct Impl final : Base {
        explicit Impl(F f) : fn(std::move(f)) {}
        void call() override { fn(); }
        F fn;
    };
    std::unique_ptr<Base> impl_;
};
}  // namespace detail

/// A named thread running fibers. Thread-safe: every member may be called
/// from any thread, fibers of this loop included (see stop() for the one
/// exception). Not copyable or movable.
class ATASKER_API ALoop {
public:
    /// Starts the loop's thread. A loop made this way belongs to no
    /// supervisor; TaskSupervisor::create_aloop() makes ones that do.
    explicit ALoop(std::string name, ALoopOptions options = {});
    ALoop(const ALoop&) = delete;
    ALoop& operator=(const ALoop&) = delete;
    /// stop(true).
    ~ALoop();

    /// Starts `fn()` as a fiber on the loop and returns a future of its
    /// result (its exception, if it throws). The future may be waited on
    /// from a plain thread (blocks it) or a fiber (suspends only that fiber).
    /// Fibers start in the order they were put.
    /// \throws Error when the loop is stopped.
    template <class F>
    auto background_task(F fn) -> boost::fibers::future<std::invoke_result_t<F&>> {
        using R = std::invoke_result_t<F&>;
        boost::fibers::promise<R> promise;
        auto future = promise.get_future();
        post(detail::FiberJob([promise = std::move(promise), fn = std::move(fn)]() mutable {
            try {
                if constexpr (std::is_void_v<R>) {
                    fn();
                    promise.set_value();
                } else {
                    promise.set_value(fn());
                }
            } catch (...) {
                promise.set_exception(std::current_exception());
            }
        }));
        return future;
    }

    /// Runs `fn()` as a fiber on the loop and blocks the caller until it
    /// ends. \returns its result. \throws what it threw; Error when the loop
    /// is stopped. From a fiber of this loop, only that fiber waits.
    template <class F>
    std::invoke_result_t<F&> run(F fn) {
        return background_task(std::move(fn)).get();
    }

    /// Stops taking fibers; those already put still start and run to their
    /// end. With `wait`, returns once they all ended and the thread exited
    /// (a fiber that never ends makes it wait forever). From a fiber of this
    /// loop, `wait` is ignored. Stopping a stopped loop does nothing.
    void stop(bool wait = true);
    /// Restarts a stopped loop with a new thread (starting an active one does nothing).
    void start();
    /// True between start and stop.
    [[nodiscard]] bool is_active() const;
    /// True when called from one of this loop's fibers (Asio's name).
    [[nodiscard]] bool running_in_this_thread() const;
    /// The name it was made with (its thread carries the first 15 characters).
    [[nodiscard]] const std::string& name() const noexcept;

private:
    void post(detail::FiberJob job);

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// The default aloop of `supervisor`: the one named "default", created on
/// first use. \throws Error when the supervisor is not started.
ATASKER_API ALoop& default_aloop(TaskSupervisor& supervisor = TaskSupervisor::instance());

}  // namespace atasker
