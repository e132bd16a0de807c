#pragma once
/// \file asio.hpp
/// async_wait(): await a Task with any Boost.Asio completion token
/// (use_awaitable, use_future, deferred, a callback). Optional: include it
/// where Asio is used; atasker.hpp does not, and the library itself needs
/// nothing of Asio (header-only).
///
///     boost::asio::awaitable<void> serve(tcp::socket socket) {
///         int r = co_await at::async_wait(at::background_task(work)(42), boost::asio::use_awaitable);
///         ...   // back on the socket's executor
///     }
///
/// The handler runs through its associated executor (the coroutine's for
/// use_awaitable; bind_executor() chooses one for a callback), which is kept
/// busy with work while the task runs, so io_context::run() does not return
/// meanwhile. A handler without an executor of its own runs on the thread
/// that ends the task, or, when the task had already ended, on Asio's
/// system executor.

#include <exception>
#include <type_traits>
#include <utility>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include <atasker/error.hpp>
#include <atasker/task.hpp>

namespace atasker {

namespace detail {

template <class R>
struct AsioSignature {
    using type = void(std::exception_ptr, R);
};
template <>
struct AsioSignature<void> {
    using type = void(std::exception_ptr);
};

/// One async_wait() in flight: told when the task ends, it hands the
/// handler to the handler's executor. Owned by itself; freed on that
/// executor, just before the handler runs.
template <class R, class Handler>
class AsioWait final : public TaskWatcher {
public:
    static void start(Task<R> task, Handler handler) {
        auto* op = new AsioWait(std::move(task), std::move(handler));
        try {
            // Before watch(): once watched, the op may complete on another thread.
            if (op->slot_.is_connected()) op->slot_.template emplace<Cancel>(op);
            if (base_of(op->task_).watch(*op)) return;
            // Ended already: posted, never run from within the initiating
            // function, as Asio requires.
            op->finish(/*post=*/true, /*aborted=*/false);
        } catch (...) {
            if (op->slot_.is_connected()) op->slot_.clear();
            delete op;
            throw;
        }
    }

    void task_ended() noexcept override { finish(/*post=*/false, /*aborted=*/false); }

private:
    using Executor = boost::asio::associated_executor_t<Handler>;
    using Slot = boost::asio::associated_cancellation_slot_t<Handler>;

    /// The handler's cancellation slot holds this: a cancellation takes the
    /// watcher back and ends the wait with operation_aborted (the task goes on;
    /// Task::cancel() cancels it). Emitted on the handler's executor.
    struct Cancel {
        explicit Cancel(AsioWait* o) noexcept : op(o) {}
        AsioWait* op;
        void operator()(boost::asio::cancellation_type type) const noexcept {
            if ((type & (boost::asio::cancellation_type::terminal | boost::asio::cancellation_type::partial |
                         boost::asio::cancellation_type::total)) == boost::asio::cancellation_type::none)
                return;
            // False: the task ended meanwhile and its outcome is on its way.
            if (base_of(op->task_).unwatch(*op)) op->finish(/*post=*/true, /*aborted=*/true);
        }
    };

    AsioWait(Task<R> task, Handler handler)
        : task_(std::move(task)),
          work_(boost::asio::get_associated_executor(handler)),
          slot_(boost::asio::get_associated_cancellation_slot(handler)),
          handler_(std::move(handler)) {}
    AsioWait(const AsioWait&) = delete;
    AsioWait& operator=(const AsioWait&) = delete;
    ~AsioWait() = default;

    // Allocation failing here leaves nothing to tell the handler with: as
    // for Asio's own operations, the program ends (noexcept callers).
    void finish(bool post, bool aborted) {
        auto on_executor = [this, aborted] { deliver(aborted); };
        if (post) {
            boost::asio::post(work_.get_executor(), std::move(on_executor));
        } else {
            boost::asio::dispatch(work_.get_executor(), std::move(on_executor));
        }
    }

    /// On the handler's executor, where the cancellation slot is emitted,
    /// so the slot is cleared with no emission in flight.
    void deliver(bool aborted) {
        if (slot_.is_connected()) slot_.clear();
        auto work = std::move(work_);
        auto handler = std::move(handler_);
        Task<R> task = std::move(task_);
        delete this;
        std::exception_ptr error =
            aborted ? std::make_exception_ptr(boost::system::system_error(boost::asio::error::operation_aborted))
                    : task.error();
        if constexpr (std::is_void_v<R>) {
            std::move(handler)(std::move(error));
        } else if (error) {
            std::move(handler)(std::move(error), R{});
        } else {
            std::move(handler)(std::exception_ptr{}, R(task.get()));
        }
        work.reset();
    }

    Task<R> task_;
    boost::asio::executor_work_guard<Executor> work_;
    Slot slot_;
    Handler handler_;
};

template <class R>
struct AsioWaitInitiation {
    template <class Handler>
    void operator()(Handler&& handler, Task<R> task) const {
        AsioWait<R, std::decay_t<Handler>>::start(std::move(task), std::forward<Handler>(handler));
    }
};

}  // namespace detail

/// Waits for `task` the Asio way: the completion handler gets
/// `(std::exception_ptr, R)` (`(std::exception_ptr)` for a void task), the
/// exception being the task's (CanceledError when it was canceled) or empty.
/// With use_awaitable, `co_await` returns the result or throws the
/// exception; with use_future, the future holds either.
///
/// The handler is invoked through its associated executor, never from
/// within async_wait() itself, and that executor counts as having work until
/// then. A cancellation through the handler's cancellation slot (terminal,
/// partial or total; e.g. an awaitable_operators `||` that another branch
/// won) ends the wait with `boost::system::system_error(operation_aborted)`
/// and leaves the task running.
/// \throws Error for an empty handle. Thread-safe.
template <class R, BOOST_ASIO_COMPLETION_TOKEN_FOR(typename detail::AsioSignature<R>::type) CompletionToken>
auto async_wait(const Task<R>& task, CompletionToken&& token) {
    static_assert(std::is_void_v<R> || std::is_default_constructible_v<R>,
                  "atasker::async_wait: the task's result type must be default-constructible, since a failed task's "
                  "handler gets (exception, R{}); return std::optional<R> from the task instead");
    if (!task.valid()) throw Error("async_wait() got an empty Task handle; give it a task from background_task()");
    return boost::asio::async_initiate<CompletionToken, typename detail::AsioSignature<R>::type>(
        detail::AsioWaitInitiation<R>{}, token, task);
}

}  // namespace atasker
