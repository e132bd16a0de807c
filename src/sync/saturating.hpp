#pragma once
// Pool limits add up without wrapping: a sum past SIZE_MAX means unlimited.

#include <cstddef>
#include <limits>

namespace atasker::detail {

inline constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

/// a + b, or `unlimited` when the sum passes it.
[[nodiscard]] constexpr std::size_t saturating_add(std::size_t a, std::size_t b) noexcept {
    return a > unlimited - b ? unlimited : a + b;
}

}  // namespace atasker::detail
