#pragma once
/// \file workers.hpp
/// atasker's background workers: a function run again and again, each run a
/// task on the supervisor (so it shows in get_task_info() under the worker's
/// name and priority, and obeys the pool's reserves).
///
///     auto ticker = at::background_worker([] { poll(); }, {.name = "poll", .interval = 1s});
///     ticker.start();
///     auto jobs = at::background_worker([](Job j) { handle(j); }, {.name = "jobs"});   // a queue worker
///     jobs.start();
///     jobs.put(Job{...});                     // from any thread
///     auto flush = at::background_worker([] { flush_cache(); }, {.event = true});
///     flush.start();
///     flush.trigger();                        // from any thread
///
/// The kind follows from the options and the executor:
/// * plain loop: no interval, delay or event; the next run is put as soon as
///   the previous one ended;
/// * interval worker: `interval` (a fixed rate, planned from the start time,
///   never drifting) or `delay` (a pause after each run);
/// * event worker: `.event = true`; each trigger() asks for one run, and
///   triggers that arrive while a run is queued or running coalesce into
///   exactly one further run;
/// * queue worker: the executor takes an item; one run per put() item, in
///   order (FIFO, or smallest first by a comparator: `background_worker<T, std::less<>>`).
///
/// `delay_before` waits before every run (atasker's meaning); for an interval
/// worker it shifts the whole grid of planned ticks.
///
/// An executor may take a `std::stop_token` first: stop() asks the run in
/// progress to stop through it. It returns void (keep going) or bool (false
/// stops the worker). An exception it throws goes to `on_error` (or the log)
/// and the worker goes on.
///
/// Timers use the supervisor's one timer thread: an idle worker uses no CPU.
///
/// A process task (an at::MpTask) is an executor too:
/// `background_worker(square, {.interval = 1s}, [](int r) { use(r); }, 7)`
/// puts `square(7)` on the process pool at each run and hands the result to
/// the handler.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <atasker/background_task.hpp>
#include <atasker/detail/background_worker.hpp>
#include <atasker/mp_task.hpp>
#include <atasker/error.hpp>
#include <atasker/priority.hpp>
#include <atasker/supervisor.hpp>

namespace atasker {

/// What an interval worker does when a run lasts past one or more planned ticks.
enum class Overrun {
    /// The default: missed ticks are dropped; the next run is on the next
    /// planned tick after the slow run ended.
    skip,
    /// The missed ticks collapse into one run, started as soon as the slow
    /// run ended; then the worker is back on its planned ticks.
    run_late_once,
};

class Worker;

/// How background_worker() builds a worker. Designated initializers read
/// well: `{.name = "poll", .priority = at::Priority::high, .interval = 1s}`.
struct WorkerOptions {
    std::string name{};                      ///< the runs' task name; default "worker-N"
    Priority priority = Priority::normal;    ///< the runs' task priority
    /// Interval worker: a run every `interval`, planned from start() (no drift).
    std::optional<std::chrono::nanoseconds> interval{};
    /// Interval worker: wait `delay` after each run ends. Not with `interval`.
    std::optional<std::chrono::nanoseconds> delay{};
    /// Wait this long before every run (interval workers: before the first
    /// planned tick, which shifts them all).
    std::chrono::nanoseconds delay_before{0};
    Overrun overrun = Overrun::skip;         ///< interval workers only
    bool event = false;                      ///< an event worker: runs on trigger()
    /// Sees every exception an executor throws, on the run's thread; the
    /// worker goes on. Empty: the error is logged. Exceptions it throws are logged.
    std::function<void(std::exception_ptr, Worker&)> on_error{};
    TaskSupervisor* supervisor = nullptr;    ///< nullptr: the default task_supervisor
};

/// start() arguments: atasker's `_name`, `_priority`, `_interval`. Each one
/// given replaces the worker's setting from then on.
struct WorkerStartOptions {
    std::optional<std::string> name{};     ///< the runs' task name from now on
    std::optional<Priority> priority{};    ///< the runs' priority from now on
    /// An interval worker's interval, or a delay worker's delay.
    std::optional<std::chrono::nanoseconds> interval{};
};

/// A snapshot of a worker, for monitoring and tests.
struct WorkerInfo {
    std::string name{};                    ///< the runs' task name
    Priority priority = Priority::normal;  ///< the runs' priority
    bool active = false;                   ///< between start() and stop()
    bool running = false;             ///< a run is queued or running now
    std::uint64_t runs = 0;           ///< executor calls so far
    std::uint64_t errors = 0;         ///< of those, how many threw
    std::uint64_t skipped_ticks = 0;  ///< interval workers: planned ticks dropped by an overrun
    std::uint64_t late_runs = 0;      ///< interval workers, run_late_once: runs started late
    std::size_t queued = 0;           ///< queue workers: items waiting
    TaskId last_task = 0;             ///< the id of the latest run's task (0: none yet)
    /// Interval workers: the planned tick of the run in progress, or of the
    /// next run while none is (ticks lie on start + delay_before + k * interval).
    std::optional<std::chrono::steady_clock::time_point> planned_tick{};
};

/// \cond INTERNAL
namespace detail {

template <class F, class... Args>
bool call_executor(F& fn, Args&&... args) {
    using R = std::invoke_result_t<F&, Args...>;
    static_assert(std::is_void_v<R> || std::is_same_v<std::remove_cvref_t<R>, bool>,
                  "atasker::background_worker: the executor must return void (keep going) or bool (false stops the "
                  "worker)");
    if constexpr (std::is_void_v<R>) {
        std::invoke(fn, std::forward<Args>(args)...);
        return true;
    } else {
        return static_cast<bool>(std::invoke(fn, std::forward<Args>(args)...));
    }
}

template <class F>
WorkerCore::Execute make_execute(F fn) {
    static_assert(std::is_invocable_v<F&, std::stop_token> || std::is_invocable_v<F&>,
                  "atasker::background_worker: the executor must be callable with no argument or with a "
                  "std::stop_token (a queue worker's executor takes the item: background_worker<Item>(fn))");
    auto shared = std::make_shared<F>(std::move(fn));
    return [shared](std::stop_token token) -> bool {
        if constexpr (std::is_invocable_v<F&, std::stop_token>) {
            return call_executor(*shared, std::move(token));
        } else {
            return call_executor(*shared);
        }
    };
}

/// Orders a queue worker's items: FIFO (Compare = void) or smallest first by
/// Compare, FIFO among equals. Thread-safe.
template <class T, class Compare>
class ItemQueue {
public:
    void push(T item) {
        std::lock_guard lock(mutex_);
        if constexpr (std::is_void_v<Compare>) {
            items_.push_back(std::move(item));
        } else {
            heap_.push(Entry{std::move(item), sequence_++});
        }
    }
    std::optional<T> pop() {
        std::lock_guard lock(mutex_);
        if constexpr (std::is_void_v<Compare>) {
            if (items_.empty()) return std::nullopt;
            std::optional<T> out(std::move(items_.front()));
            items_.pop_front();
            return out;
        } else {
            if (heap_.empty()) return std::nullopt;
            // priority_queue::top() is const: the entry is moved out just before pop.
            std::optional<T> out(std::move(const_cast<Entry&>(heap_.top()).item));
            heap_.pop();
            return out;
        }
    }
    [[nodiscard]] std::size_t size() const {
        std::lock_guard lock(mutex_);
        if constexpr (std::is_void_v<Compare>) {
            return items_.size();
        } else {
            return heap_.size();
        }
    }

private:
    struct Entry {
        T item;
        std::uint64_t sequence;
    };
    struct Later {
        // std::priority_queue pops the "largest": make that the smallest item, then the oldest.
        bool operator()(const Entry& a, const Entry& b) const {
            if constexpr (!std::is_void_v<Compare>) {
                Compare less{};
                if (less(b.item, a.item)) return true;
                if (less(a.item, b.item)) return false;
            }
            return a.sequence > b.sequence;
        }
    };
    struct Empty {};
    mutable std::mutex mutex_;
    std::conditional_t<std::is_void_v<Compare>, std::deque<T>, Empty> items_;
    std::conditional_t<std::is_void_v<Compare>, Empty, std::priority_queue<Entry, std::vector<Entry>, Later>> heap_;
    std::uint64_t sequence_ = 0;
};

/// The one parameter of a non-generic callable, if it has exactly one.
template <class F>
struct single_param : single_param<decltype(&F::operator())> {};
template <class R, class A>
struct single_param<R (*)(A)> {
    using type = std::remove_cvref_t<A>;
};
template <class R, class A>
struct single_param<R (*)(A) noexcept> : single_param<R (*)(A)> {};
template <class C, class R, class A>
struct single_param<R (C::*)(A)> : single_param<R (*)(A)> {};
template <class C, class R, class A>
struct single_param<R (C::*)(A) const> : single_param<R (*)(A)> {};
template <class C, class R, class A>
struct single_param<R (C::*)(A) noexcept> : single_param<R (*)(A)> {};
template <class C, class R, class A>
struct single_param<R (C::*)(A) const noexcept> : single_param<R (*)(A)> {};

template <class F, class = void>
struct has_single_param : std::false_type {};
template <class F>
struct has_single_param<F, std::void_t<typename single_param<F>::type>> : std::true_type {};

}  // namespace detail
/// \endcond

/// A background worker: runs its executor again and again, each run a task
/// on its supervisor. Not copyable or movable (background_worker() returns it
/// by guaranteed elision; hold it in a std::unique_ptr to move it around).
/// Every member function is thread-safe. The worker must be stopped (or
/// destroyed) before its supervisor is destroyed, and must not be destroyed
/// from its own executor or concurrently with its supervisor's stop().
class ATASKER_API Worker {
public:
    /// A loop, interval or event worker (see the file comment).
    /// \throws Error on contradictory options (interval and delay; event with
    /// interval or delay; a negative duration).
    template <class F>
    Worker(F executor, WorkerOptions options)
        : core_(std::make_shared<detail::WorkerCore>(std::move(options), false,
                                                     detail::make_execute(std::move(executor)),
                                                     detail::WorkerCore::Pending{}, this)) {}
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    /// Stops the worker and waits for the run in progress (see stop()).
    virtual ~Worker();

    /// Starts the worker (starting an active worker does nothing). Overrides
    /// given replace the name, priority or interval from now on.
    /// \throws Error when the supervisor is not started, when `interval` is
    /// given to a worker that has none, or when called from the worker's own
    /// executor after stop().
    void start(const WorkerStartOptions& overrides = {});
    /// Stops the worker: no further run starts; a queued run is canceled and
    /// a running one is asked to stop through its std::stop_token. With
    /// `wait`, returns once the run in progress ended. From inside the
    /// executor it only marks the worker stopped (the run ends normally).
    /// Items and triggers still waiting stay for the next start().
    void stop(bool wait = true);
    /// True between start() and stop() (or the executor returning false).
    [[nodiscard]] bool is_active() const;
    /// A snapshot of the worker's state and counters.
    [[nodiscard]] WorkerInfo info() const;
    /// Event workers: asks for one run (coalescing with a run already asked
    /// for). A trigger while stopped is kept for start().
    /// \throws Error when this is not an event worker.
    void trigger();

protected:
    /// For QueueWorker: a core built around an item queue.
    Worker(WorkerOptions options, detail::WorkerCore::Execute execute, detail::WorkerCore::Pending pending)
        : core_(std::make_shared<detail::WorkerCore>(std::move(options), true, std::move(execute), std::move(pending),
                                                     this)) {}
    /// The shared state the runs work on (for QueueWorker).
    [[nodiscard]] detail::WorkerCore& core() const noexcept { return *core_; }

private:
    std::shared_ptr<detail::WorkerCore> core_;
};

/// A queue worker: one run per item, items taken in order (Compare = void:
/// FIFO; otherwise smallest first by Compare, FIFO among equals, as
/// asyncio.PriorityQueue). The executor takes the item, optionally after a
/// std::stop_token. Thread-safe.
template <class T, class Compare = void>
class QueueWorker final : public Worker {
public:
    using item_type = T;  ///< what put() takes and the executor receives

    /// \throws Error on contradictory options (a queue worker takes no
    /// interval, delay or event).
    template <class F>
    QueueWorker(F executor, WorkerOptions options)
        : QueueWorker(std::make_shared<detail::ItemQueue<T, Compare>>(), std::move(executor), std::move(options)) {}

    /// Adds an item, from any thread, never blocking on the executor; it is
    /// processed once, in order. Items put while stopped wait for start().
    void put(T item) {
        queue_->push(std::move(item));
        core().work_arrived();
    }
    /// Items waiting (not counting the one being processed).
    [[nodiscard]] std::size_t size() const { return queue_->size(); }

private:
    template <class F>
    QueueWorker(std::shared_ptr<detail::ItemQueue<T, Compare>> queue, F executor, WorkerOptions options)
        : Worker(std::move(options), make_execute(queue, std::move(executor)), [queue] { return queue->size(); }),
          queue_(std::move(queue)) {}

    template <class F>
    static detail::WorkerCore::Execute make_execute(std::shared_ptr<detail::ItemQueue<T, Compare>> queue, F fn) {
        static_assert(std::is_invocable_v<F&, std::stop_token, T&&> || std::is_invocable_v<F&, T&&>,
                      "atasker::background_worker: a queue worker's executor must take the item (T), optionally "
                      "after a std::stop_token");
        auto shared = std::make_shared<F>(std::move(fn));
        return [queue = std::move(queue), shared](std::stop_token token) -> bool {
            auto item = queue->pop();
            if (!item) return true;
            if constexpr (std::is_invocable_v<F&, std::stop_token, T&&>) {
                return detail::call_executor(*shared, std::move(token), std::move(*item));
            } else {
                return detail::call_executor(*shared, std::move(*item));
            }
        };
    }

    std::shared_ptr<detail::ItemQueue<T, Compare>> queue_;
};

/// atasker's background_worker for an executor that takes no item (or only
/// a std::stop_token): a loop, interval or event worker, not yet started.
/// \throws Error on contradictory options.
template <class F>
    requires(std::is_invocable_v<std::decay_t<F>&> || std::is_invocable_v<std::decay_t<F>&, std::stop_token>)
[[nodiscard]] Worker background_worker(F&& executor, WorkerOptions options = {}) {
    return Worker(std::forward<F>(executor), std::move(options));
}

/// A queue worker whose item type is the executor's one parameter
/// (`[](Job j) {...}`). For a generic lambda, name the type:
/// `background_worker<Job>(fn, options)`.
template <class F>
    requires(!std::is_invocable_v<std::decay_t<F>&> && !std::is_invocable_v<std::decay_t<F>&, std::stop_token>)
[[nodiscard]] auto background_worker(F&& executor, WorkerOptions options = {}) {
    static_assert(detail::has_single_param<std::decay_t<F>>::value,
                  "atasker::background_worker: cannot tell the queue item type from the executor; name it: "
                  "background_worker<Item>(fn, options)");
    using T = typename detail::single_param<std::decay_t<F>>::type;
    return QueueWorker<T>(std::forward<F>(executor), std::move(options));
}

/// A queue worker of items T: FIFO (Compare = void), or a priority queue
/// processing the smallest item by Compare first
/// (`background_worker<int, std::less<>>(fn)`).
template <class T, class Compare = void, class F>
[[nodiscard]] QueueWorker<T, Compare> background_worker(F&& executor, WorkerOptions options = {}) {
    return QueueWorker<T, Compare>(std::forward<F>(executor), std::move(options));
}

/// A worker whose executor is a process task: each run puts `task(args...)`
/// on the process pool at the worker's priority and hands its result to
/// `on_result` (which returns void, or bool: false stops the worker), on the
/// run's thread. The run waits for the process task, so it holds a thread
/// meanwhile; stop() cancels the process task (its worker process is
/// killed). What the task throws, or a dead worker's RemoteError, goes to
/// on_error and the worker goes on.
template <class F, class OnResult, class... Args>
[[nodiscard]] Worker background_worker(const MpTask<F>& task, WorkerOptions options, OnResult on_result,
                                       Args... args) {
    using R = typename MpTask<F>::result_type;
    TaskOptions put;
    put.priority = options.priority;
    put.supervisor = options.supervisor;
    auto executor = [&task, put, on_result = std::move(on_result), args = std::tuple<Args...>(std::move(args)...)](
                        std::stop_token token) mutable -> bool {
        auto run = std::apply([&](const auto&... a) { return background_task(task, put)(a...); }, args);
        std::stop_callback cancel_on_stop(token, [&run] { (void)run.cancel(); });
        if constexpr (std::is_void_v<R>) {
            run.get();
            return detail::call_executor(on_result);
        } else {
            return detail::call_executor(on_result, run.get());
        }
    };
    return Worker(std::move(executor), std::move(options));
}

}  // namespace atasker
