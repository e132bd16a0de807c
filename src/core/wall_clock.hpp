#pragma once
// WallClock: the wall time of task records (queued, started, ended), in
// nanoseconds since the Unix epoch, as system_clock tells it, for about
// half of what reading system_clock costs.
//
// Every task reads the clock twice (its put, and the pool thread's step that
// ends one task and starts the next), and system_clock's clock_gettime takes
// about 30 ns on the VMs this library is measured on, even with the TSC as
// the kernel's clocksource: the vDSO fences the TSC read (lfence; rdtsc),
// which waits for every load before it, contended cache lines included.
// Read as TSC ticks (rdtsc, 12 ns there) scaled from an anchor instead,
// tiny tasks ran 1.08-1.22x as many per second in paired runs
// (docs/results.md, "The records' clock").
//
// How: an anchor is one (TSC, system_clock) pair read together, and the rate
// (ns per tick) is measured between the last two anchors. A read more than
// reanchor_ticks after the anchor reads system_clock, which it returns, and
// makes that the new anchor; so the clock follows NTP's slewing and steps
// within a few milliseconds, and its error stays within a few microseconds
// of system_clock (tolerance; a fraction of a microsecond while the rate is
// steady), except that after a step (the clock was set, as when a VM is
// restored from a snapshot) reads are off by the step until the next
// anchor. Until a rate is known, and wherever the kernel does not offer the
// TSC as a clocksource (it found it unsynchronised between CPUs or unstable,
// as on VMs that offer kvm-clock alone) or the CPU is not x86-64, every read
// is system_clock's own. Where the kernel keeps time with kvm-clock but
// offers the TSC too, reads scale the TSC: kvm-clock is the TSC scaled.
//
// Lock-free: the anchor is a seqlock of atomics; one reader at a time
// re-anchors, others read system_clock meanwhile. (A process forked while
// another of its threads re-anchored reads system_clock from then on.)

#include <atomic>
#include <chrono>
#include <cstdint>

#include <atasker/export.hpp>

namespace atasker::detail {

/// Nanoseconds since the Unix epoch (0 = not yet).
using WallNanos = std::int64_t;

class ATASKER_API WallClock {
public:
    /// How far a read may be from system_clock's at the same instant.
    static constexpr std::chrono::microseconds tolerance{10};
    /// Ticks after its anchor that a read re-anchors: 7 ms at 2.5 GHz.
    static constexpr std::uint64_t reanchor_ticks = std::uint64_t{1} << 24;

    /// `use_tsc`: whether reads may scale TSC ticks (tsc_usable() for the
    /// process's clock); false reads system_clock every time.
    explicit WallClock(bool use_tsc) noexcept : use_tsc_(use_tsc) {}
    WallClock(const WallClock&) = delete;
    WallClock& operator=(const WallClock&) = delete;

    [[nodiscard]] WallNanos now() noexcept;
    /// Whether reads scale TSC ticks now (a rate is known).
    [[nodiscard]] bool scaled() const noexcept { return rate_.load(std::memory_order_relaxed) != 0; }

    /// x86-64, and the kernel offers the TSC as a clocksource: it found it
    /// stable and synchronised between CPUs (an unstable one is not listed
    /// in available_clocksource).
    [[nodiscard]] static bool tsc_usable() noexcept;

private:
    WallNanos reanchor() noexcept;

    const bool use_tsc_;
    std::atomic_flag reanchoring_;
    // The anchor: even `sequence_` while it is whole.
    std::atomic<std::uint32_t> sequence_{0};
    std::atomic<std::uint64_t> ticks_{0};  // 0: none yet
    std::atomic<WallNanos> wall_{0};
    std::atomic<std::uint64_t> rate_{0};  // ns per tick, times 2^32; 0: not known yet
};

/// The process's wall clock for task records.
[[nodiscard]] WallNanos wall_now() noexcept;

}  // namespace atasker::detail
