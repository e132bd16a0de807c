#pragma once
/// \file when_any.hpp
/// when_any(): waits for the first of several tasks to finish and says which
/// (asyncio.wait(FIRST_COMPLETED), concurrencpp's when_any).
///
///     std::vector<at::Task<std::string>> mirrors = {fetch(a), fetch(b), fetch(c)};
///     std::size_t first = at::when_any(mirrors, 5s);
///     std::string page = mirrors[first].get();

#include <chrono>
#include <cstddef>
#include <optional>
#include <ranges>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <atasker/detail/completion_order.hpp>
#include <atasker/error.hpp>
#include <atasker/task.hpp>

namespace atasker {

namespace detail {

template <class L>
std::size_t when_any_until(const L& tasks, std::optional<std::chrono::steady_clock::time_point> deadline,
                           std::chrono::milliseconds timeout) {
    const std::size_t n = std::ranges::size(tasks);
    if (n == 0) throw Error("when_any() needs at least one task; with none, none can finish first");
    auto bases = bases_of(tasks, "when_any()");
    for (std::size_t i = 0; i < n; ++i)
        if (bases[i]->is_done()) return i;  // no watcher needed
    CompletionOrder order(std::move(bases));
    if (const auto i = order.next(deadline)) return *i;
    throw TimeoutError(fmt::format("none of {} tasks finished within {}", n, timeout));
}

}  // namespace detail

/// Waits until one of `tasks` (a std::vector, std::array or std::span of
/// Task<R>) has finished (completed, failed or canceled) and returns its
/// index; when several had already finished, the lowest. Its outcome is
/// then ready: tasks[i].get() returns or rethrows at once. Waiting never
/// polls: each task tells the waiter as it ends, and the watchers are taken
/// back before this returns. Thread-safe (the list is only read).
/// \throws Error when `tasks` is empty or holds an empty handle.
template <detail::TaskList L>
[[nodiscard]] std::size_t when_any(const L& tasks) {
    return detail::when_any_until(tasks, std::nullopt, {});
}

/// As when_any() above, waiting at most `timeout`.
/// \throws TimeoutError when none finished in time ("none of 3 tasks
/// finished within 5000ms"); Error as above.
template <detail::TaskList L, class Rep, class Period>
[[nodiscard]] std::size_t when_any(const L& tasks, std::chrono::duration<Rep, Period> timeout) {
    return detail::when_any_until(
        tasks, std::chrono::steady_clock::now() + std::chrono::ceil<std::chrono::steady_clock::duration>(timeout),
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
}

}  // namespace atasker
