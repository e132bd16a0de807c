#include <atasker/pool_options.hpp>


#include <fmt/format.h>

#include <atasker/error.hpp>

#include "sync/saturating.hpp"

namespace atasker {

std::size_t PoolOptions::capacity() const noexcept {
    if (max_size) return *max_size;
    if (pool_size == 0) return detail::unlimited;
    // A sum past SIZE_MAX is as good as unlimited, as admission counts it.
    return detail::saturating_add(detail::saturating_add(pool_size, reserve_normal), reserve_high);
}

void PoolOptions::validate(const char* pool_name) const {
    const std::size_t cap = capacity();
    if (max_size && *max_size == 0)
        throw Error(fmt::format("{}: max_size is 0, so no task could ever run; give max_size at least 1 or leave it unset",
                                pool_name));
    if (min_size > cap)
        throw Error(fmt::format("{}: min_size ({}) is larger than max_size ({}); lower min_size or raise max_size",
                                pool_name, min_size, cap));
    if (pool_size != 0 && max_size && *max_size < pool_size)
        throw Error(fmt::format("{}: max_size ({}) is smaller than pool_size ({}); raise max_size or lower pool_size",
                                pool_name, *max_size, pool_size));
    if (idle_timeout.count() <= 0)
        throw Error(fmt::format("{}: idle_timeout must be positive; threads above min_size retire after it", pool_name));
    if (batch_time.count() < 0)
        throw Error(fmt::format("{}: batch_time must not be negative; give 0 for one task per wake-up", pool_name));
    if (pool_size == 0 && (reserve_normal != 0 || reserve_high != 0))
        throw Error(fmt::format("{}: reserves ({} normal, {} high) need a pool_size; with pool_size 0 the pool is "
                                "unlimited and reserves mean nothing",
                                pool_name, reserve_normal, reserve_high));
}

}  // namespace atasker
