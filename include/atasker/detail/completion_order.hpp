#pragma once
/// \file detail/completion_order.hpp
/// CompletionOrder: watches a list of tasks and hands out their positions in
/// the order they end; what when_any() and as_completed() wait with. Also
/// what both accept as a list of tasks (TaskList).

#include <chrono>
#include <cstddef>
#include <optional>
#include <ranges>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <atasker/detail/task_base.hpp>
#include <atasker/error.hpp>
#include <atasker/export.hpp>
#include <atasker/task.hpp>

namespace atasker::detail {

template <class T>
struct is_task : std::false_type {};
template <class R>
struct is_task<Task<R>> : std::true_type {};

/// A contiguous list of task handles: a std::vector, std::array or
/// std::span of Task<R> (const or not).
template <class L>
concept TaskList = std::ranges::contiguous_range<L> && std::ranges::sized_range<L> &&
                   is_task<std::remove_cv_t<std::ranges::range_value_t<L>>>::value;

/// The tasks behind `tasks`, in order. \throws Error naming `caller` when
/// one is an empty handle.
template <class L>
[[nodiscard]] std::vector<const TaskBase*> bases_of(const L& tasks, std::string_view caller) {
    std::vector<const TaskBase*> out;
    out.reserve(std::ranges::size(tasks));
    for (const auto& t : tasks) {
        if (!t.valid())
            throw Error(fmt::format("{}: the task at index {} is an empty handle (default-constructed); pass "
                                    "handles that background_task() returned",
                                    caller, out.size()));
        out.push_back(&base_of(t));
    }
    return out;
}

/// Watches tasks through TaskWatchers and hands out their positions in the
/// order they end; tasks that had already ended come first, in list order.
/// Nothing polls: the thread that ends a task queues its position and wakes
/// the waiting one. The state the watchers reach is shared and counted, so
/// a watcher told while it is being taken back (unwatch() false) finds it
/// alive. Used by one thread at a time; the tasks must outlive it.
class ATASKER_API CompletionOrder {
public:
    /// Starts watching `tasks` (none null). \throws std::bad_alloc.
    explicit CompletionOrder(std::vector<const TaskBase*> tasks);
    CompletionOrder(CompletionOrder&& other) noexcept
        : state_(std::exchange(other.state_, nullptr)), remaining_(std::exchange(other.remaining_, 0)) {}
    CompletionOrder& operator=(CompletionOrder&&) = delete;
    /// Takes back the watchers whose tasks have not ended.
    ~CompletionOrder();

    /// The position of the next task to end, once it ended; nullopt when
    /// `deadline` passed first (none: waits as long as it takes). Needs
    /// remaining() > 0.
    [[nodiscard]] std::optional<std::size_t> next(std::optional<std::chrono::steady_clock::time_point> deadline);
    /// How many positions next() has yet to hand out.
    [[nodiscard]] std::size_t remaining() const noexcept { return remaining_; }

private:
    struct State;
    State* state_;
    std::size_t remaining_;
};

}  // namespace atasker::detail
