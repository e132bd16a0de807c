#pragma once
/// \file map.hpp
/// Bulk submission: at::map() runs a function over many inputs and returns
/// the results in input order; at::map_tasks() puts one task per input.
///
/// \code
/// std::vector<int> squares = at::map(square, inputs);                 // an MpTask: chunks to the workers
/// std::vector<std::string> names = at::map([](int id) { return lookup(id); }, ids,
///                                          {.priority = at::Priority::low});
/// std::vector<at::Task<int>> handles = at::map_tasks(square, inputs);  // one task per input
/// \endcode

#include <algorithm>
#include <cstddef>
#include <exception>
#include <iterator>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <atasker/background_task.hpp>
#include <atasker/detail/map_chunk.hpp>
#include <atasker/error.hpp>
#include <atasker/mp_task.hpp>
#include <atasker/priority.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task.hpp>

namespace atasker {

/// How at::map() and at::map_tasks() put their tasks.
struct MapOptions {
    Priority priority = Priority::normal;  ///< of every task the map puts
    /// Items per task (at::map() only). 0: chosen by the library, as
    /// Python's Pool.map does: the inputs split into about four tasks per
    /// thread or worker process of the pool, so each pays one hand-off and
    /// the pool stays evenly busy.
    std::size_t chunksize = 0;
    TaskSupervisor* supervisor = nullptr;  ///< nullptr: the default task_supervisor
};

namespace detail {

template <class Range>
constexpr void check_map_inputs() {
    static_assert(std::ranges::random_access_range<const Range> && std::ranges::sized_range<const Range>,
                  "atasker::map: the inputs must be a sized random-access range (a std::vector, std::array, "
                  "std::span...); copy other ranges into a std::vector first");
}

template <class Range>
using map_item_t = std::ranges::range_value_t<const Range>;

/// Puts the chunks of one map and gathers their outcomes; see at::map().
template <class R>
class MapRun {
public:
    MapRun(std::size_t count, const MapOptions& options)
        : slots_(count),
          count_(count),
          supervisor_(options.supervisor != nullptr ? options.supervisor : &TaskSupervisor::instance()) {}
    MapRun(const MapRun&) = delete;
    MapRun& operator=(const MapRun&) = delete;
    /// Waits for every chunk put: they refer to this object and the inputs.
    ~MapRun() {
        for (const TaskRef& c : chunks_) c->wait();
    }

    [[nodiscard]] MapSlots<R>& slots() noexcept { return slots_; }
    [[nodiscard]] TaskSupervisor& supervisor() const noexcept { return *supervisor_; }

    /// Items per chunk: `options.chunksize`, or about four chunks per
    /// runner of `pool` (`runners`).
    [[nodiscard]] std::size_t chunk_size(const MapOptions& options, std::size_t runners) const noexcept {
        if (options.chunksize != 0) return options.chunksize;
        const std::size_t chunks = 4 * std::max<std::size_t>(runners, 1);
        return std::max<std::size_t>(1, (count_ + chunks - 1) / chunks);
    }

    /// Puts a chunk per `size` items, made by `make(first, last)`.
    template <class Make>
    void put_chunks(std::size_t size, const TaskOptions& options, Make make) {
        chunks_.reserve((count_ + size - 1) / size);  // before any put: nothing put goes unwaited
        for (std::size_t first = 0; first < count_; first += size) {
            TaskBase* chunk = make(first, std::min(count_, first + size));
            chunk->preset_refs(2);  // one here, one the supervisor takes over
            TaskRef mine(chunk);
            supervisor_->put_task(chunk, options);
            chunks_.push_back(std::move(mine));
        }
    }

    /// Waits for every chunk; then the results in input order, or MapError
    /// for the first item that failed.
    template <class Chunk>
    auto finish() {
        std::optional<std::pair<std::size_t, std::exception_ptr>> first;
        std::size_t failures = 0;
        const auto note = [&](std::size_t i, const std::exception_ptr& e) {
            ++failures;
            if (!first || i < first->first) first.emplace(i, e);
        };
        for (const TaskRef& c : chunks_) {
            c->wait();
            auto& chunk = static_cast<Chunk&>(*c.get());
            for (const auto& [i, e] : chunk.failures.items) note(i, e);
            // A chunk that failed as a whole (canceled, no memory): its first
            // item without an outcome stands for it.
            if (c->end_status() != TaskStatus::completed) note(unfinished_item(chunk), c->error());
        }
        chunks_.clear();
        if (first) throw MapError(first->first, count_, first->second, failures);
        if constexpr (!std::is_void_v<R>) {
            std::vector<R> out;
            out.reserve(count_);
            for (auto& v : slots_.values.slots) out.push_back(std::move(*v));
            return out;
        }
    }

private:
    template <class Chunk>
    std::size_t unfinished_item(const Chunk& chunk) const noexcept {
        std::size_t i = chunk.first();
        if constexpr (!std::is_void_v<R>) {
            while (i < count_ && slots_.values.slots[i]) ++i;
        }
        return i;
    }

    MapSlots<R> slots_;
    std::size_t count_;
    TaskSupervisor* supervisor_;
    std::vector<TaskRef> chunks_;
};

/// The runners of the pool that runs tasks of `type`: its pool_size, or
/// its live runners when unlimited.
[[nodiscard]] inline std::size_t map_runners(const TaskSupervisor& supervisor, TaskType type) {
    const SupervisorInfo info = supervisor.get_info();
    const PoolInfo& pool = type == TaskType::mp ? info.mp_pool : info.thread_pool;
    return pool.options.pool_size != 0 ? pool.options.pool_size : pool.workers;
}

}  // namespace detail

/// Runs `fn` over every item of `inputs` and returns the results in input
/// order (nothing when `fn` returns void). `fn` is called with the item, or
/// with the elements of a tuple item when it does not take the tuple itself.
/// The items go to the thread pool in chunks of `options.chunksize`, one
/// task each; `fn` and `inputs` are used in place and must not change until
/// map() returns.
///
/// Every item runs, even after one failed.
/// \throws MapError naming the first item that failed (lowest index), with
/// its exception; Error when the supervisor is not started.
/// Thread-safe: any thread may call it, except a pool thread of a
/// saturated pool (it waits for the chunks it put).
template <class F, class Range>
auto map(F&& fn, const Range& inputs, const MapOptions& options = {}) {
    detail::check_map_inputs<Range>();
    using Fn = std::remove_reference_t<F>;
    using R = detail::map_result_t<Fn, detail::map_item_t<Range>>;
    using Chunk = detail::MapThreadChunk<Fn, Range, R>;
    const std::size_t n = std::ranges::size(inputs);
    detail::MapRun<R> run(n, options);
    const std::size_t size = run.chunk_size(options, detail::map_runners(run.supervisor(), TaskType::thread));
    const TaskOptions put_options{.priority = options.priority, .supervisor = &run.supervisor()};
    run.put_chunks(size, put_options,
                   [&](std::size_t first, std::size_t last) { return new Chunk(fn, inputs, run.slots(), first, last); });
    return run.template finish<Chunk>();
}

/// Runs the process task `task` over every item of `inputs` in the worker
/// processes and returns the results in input order. Each chunk of
/// `options.chunksize` items is one task whose calls reach one worker in one
/// request (the worker runs them one after another and answers them
/// together), so small calls cost little more than the function itself.
/// An item is the task's argument, or a tuple of its arguments.
///
/// Every item runs, even after one failed; an item that crashes its worker
/// fails alone (a RemoteError in the MapError), and the rest of its chunk
/// goes on in a fresh worker.
/// \throws MapError naming the first item that failed; Error when the
/// supervisor is not started or has no process pool.
template <class F, class Range>
auto map(const MpTask<F>& task, const Range& inputs, const MapOptions& options = {}) {
    detail::check_map_inputs<Range>();
    using R = typename MpTask<F>::result_type;
    using Chunk = detail::MapProcessChunk<F, Range>;
    const std::size_t n = std::ranges::size(inputs);
    detail::MapRun<R> run(n, options);
    const std::size_t size = run.chunk_size(options, detail::map_runners(run.supervisor(), TaskType::mp));
    const TaskOptions put_options{.name = task.name(), .priority = options.priority, .supervisor = &run.supervisor()};
    run.put_chunks(size, put_options,
                   [&](std::size_t first, std::size_t last) { return new Chunk(task, inputs, run.slots(), first, last); });
    return run.template finish<Chunk>();
}

namespace detail {
/// Whether map_tasks() passes an item whole to `F` (else a tuple item's
/// elements): as at::map() decides.
template <class F, class Item>
constexpr bool takes_whole_item() {
    if constexpr (is_mp_task<std::remove_cvref_t<F>>::value) {
        return std::tuple_size_v<typename std::remove_cvref_t<F>::args_tuple> == 1;
    } else {
        return std::is_invocable_v<std::remove_reference_t<F>&, const Item&>;
    }
}
}  // namespace detail

/// Puts one task per item of `inputs` (`fn` a callable or an MpTask, called
/// as at::map() calls it) and returns their handles in input order; each
/// task has its own record, can be canceled, and fails on its own.
/// options.chunksize is ignored. The items are copied into their tasks.
/// \throws Error when the supervisor is not started (the tasks put before
/// stay put; their handles are lost with the exception).
template <class F, class Range>
auto map_tasks(F&& fn, const Range& inputs, const MapOptions& options = {}) {
    detail::check_map_inputs<Range>();
    const auto wrapped =
        background_task(std::forward<F>(fn), TaskOptions{.priority = options.priority, .supervisor = options.supervisor});
    using Item = detail::map_item_t<Range>;
    const auto put = [&wrapped](const Item& item) {
        if constexpr (detail::takes_whole_item<F, Item>()) {
            return wrapped(item);
        } else {
            return std::apply(wrapped, item);
        }
    };
    std::vector<decltype(put(std::declval<const Item&>()))> out;
    out.reserve(std::ranges::size(inputs));
    for (const auto& item : inputs) out.push_back(put(item));
    return out;
}

}  // namespace atasker
