#pragma once
/// \file as_completed.hpp
/// as_completed(): a range over tasks in the order they finish
/// (concurrent.futures.as_completed).
///
///     for (at::Task<int>& t : at::as_completed(tasks)) fmt::print("{}\n", t.get());

#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <ranges>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <atasker/detail/completion_order.hpp>
#include <atasker/error.hpp>
#include <atasker/task.hpp>

namespace atasker {

/// What as_completed() returns: a single-pass range over the tasks of a
/// list, each once, in the order they finish. `T` is Task<R>, or const
/// Task<R> for a const list. begin() and the iterator's ++ block until the
/// next task has finished (its outcome is then ready: get() returns or
/// rethrows at once); tasks that had finished before come first, in list
/// order. Nothing polls: each task tells the range as it ends, and a range
/// left early takes back what it still watches. Used by one thread; a list
/// it does not own must outlive it, unchanged.
template <class T>
class AsCompleted {
public:
    /// The single-pass input iterator; it refers to the task handed out last.
    class iterator {
    public:
        using iterator_concept = std::input_iterator_tag;  ///< single pass
        using value_type = std::remove_const_t<T>;         ///< a task handle
        using difference_type = std::ptrdiff_t;            ///< as std::input_iterator requires

        /// An iterator of no range, to assign one to.
        iterator() noexcept = default;
        /// The task that finished; a reference into the list.
        T& operator*() const noexcept { return range_->tasks_[range_->current_]; }
        /// The same, for `it->get()`.
        T* operator->() const noexcept { return &**this; }
        /// Waits for the next task to finish. \throws TimeoutError when the
        /// range's timeout passed first ("2 of 5 tasks did not finish within 100ms").
        iterator& operator++() {
            range_->advance();
            return *this;
        }
        /// As ++it (an input iterator has no copy worth returning).
        void operator++(int) { ++*this; }
        /// True once every task was handed out.
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.at_end(); }

    private:
        friend class AsCompleted;
        explicit iterator(AsCompleted* range) noexcept : range_(range) {}
        [[nodiscard]] bool at_end() const noexcept { return range_->done_; }
        AsCompleted* range_ = nullptr;
    };

    /// Use as_completed(); the list is `tasks`, or `owned` when it moved in.
    AsCompleted(std::vector<std::remove_const_t<T>> owned, std::span<T> tasks, std::vector<const detail::TaskBase*> bases,
                std::optional<std::chrono::steady_clock::time_point> deadline, std::chrono::milliseconds timeout)
        : owned_(std::move(owned)),
          tasks_(owned_.empty() ? tasks : std::span<T>(owned_)),
          order_(std::move(bases)),
          deadline_(deadline),
          timeout_(timeout) {}
    /// Moves the range; iterators refer to it, so take them after the move.
    AsCompleted(AsCompleted&&) noexcept = default;
    AsCompleted& operator=(AsCompleted&&) = delete;

    /// Waits for the first task to finish (nothing to wait for in an empty
    /// list). A second call goes on from where the first left.
    /// \throws TimeoutError as iterator::operator++.
    [[nodiscard]] iterator begin() {
        if (!started_) {
            started_ = true;
            advance();
        }
        return iterator(this);
    }
    /// The end: an iterator equals it once every task was handed out.
    [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }
    /// How many tasks the list holds.
    [[nodiscard]] std::size_t size() const noexcept { return tasks_.size(); }

private:
    void advance() {
        if (order_.remaining() == 0) {
            done_ = true;
            return;
        }
        const auto next = order_.next(deadline_);
        if (!next)
            throw TimeoutError(fmt::format("{} of {} tasks did not finish within {}", order_.remaining(),
                                           tasks_.size(), timeout_));
        current_ = *next;
    }

    std::vector<std::remove_const_t<T>> owned_;  // before order_: the tasks outlive the watchers
    std::span<T> tasks_;
    detail::CompletionOrder order_;
    std::optional<std::chrono::steady_clock::time_point> deadline_;
    std::chrono::milliseconds timeout_;
    std::size_t current_ = 0;
    bool started_ = false;
    bool done_ = false;
};

namespace detail {

template <class L>
auto as_completed_until(L&& tasks, std::optional<std::chrono::steady_clock::time_point> deadline,
                        std::chrono::milliseconds timeout) {
    using Element = std::remove_reference_t<std::ranges::range_reference_t<L>>;
    using Handle = std::remove_const_t<Element>;
    auto bases = bases_of(tasks, "as_completed()");
    if constexpr (std::ranges::borrowed_range<L>) {  // an lvalue list, or a span: it outlives the loop
        return AsCompleted<Element>({}, std::span<Element>(std::ranges::data(tasks), std::ranges::size(tasks)),
                                    std::move(bases), deadline, timeout);
    } else {  // a temporary list would be gone before the loop runs: the range keeps it
        std::vector<Handle> owned;
        if constexpr (std::is_same_v<std::remove_cvref_t<L>, std::vector<Handle>>) {
            owned = std::move(tasks);
        } else {
            owned.assign(std::make_move_iterator(std::ranges::begin(tasks)),
                         std::make_move_iterator(std::ranges::end(tasks)));
        }
        return AsCompleted<Handle>(std::move(owned), {}, std::move(bases), deadline, timeout);
    }
}

}  // namespace detail

/// A range over `tasks` (a std::vector, std::array or std::span of Task<R>)
/// in the order they finish, each once:
/// `for (at::Task<R>& t : at::as_completed(tasks))`. Watching starts here.
/// A temporary list is moved into the range. See AsCompleted.
/// \throws Error when `tasks` holds an empty handle.
template <detail::TaskList L>
[[nodiscard]] auto as_completed(L&& tasks) {
    return detail::as_completed_until(std::forward<L>(tasks), std::nullopt, {});
}

/// As as_completed() above, with every task due within `timeout` of this
/// call: the iterator throws TimeoutError when the next one is not.
template <detail::TaskList L, class Rep, class Period>
[[nodiscard]] auto as_completed(L&& tasks, std::chrono::duration<Rep, Period> timeout) {
    return detail::as_completed_until(
        std::forward<L>(tasks),
        std::chrono::steady_clock::now() + std::chrono::ceil<std::chrono::steady_clock::duration>(timeout),
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
}

}  // namespace atasker
