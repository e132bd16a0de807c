#pragma once
/// \file cpu_handoff.hpp
/// How long a cache line takes to pass between two CPUs: the hidden variable
/// of every figure where two threads share data. On a VM the host may move
/// the vCPUs between cores (sharing a cache or not) while the guest runs,
/// and the figures move with it; the report says what it was.

#include <optional>

namespace atasker_bench {

/// Nanoseconds one way, the median of a few runs in which two threads pinned
/// to the first two CPUs this thread may use pass a counter back and forth
/// (each waits for the other's store, then stores); nothing where this thread
/// may use one CPU only, or pinning fails. Takes a few tens of milliseconds;
/// this thread's CPU mask is restored after.
[[nodiscard]] std::optional<double> cpu_handoff_ns();

}  // namespace atasker_bench
