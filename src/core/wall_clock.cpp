#include "core/wall_clock.hpp"

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <limits>

#include <fcntl.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace atasker::detail {

namespace {

WallNanos system_now() noexcept {
    timespec ts{};
    (void)::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<WallNanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::uint64_t ticks() noexcept {
#if defined(__x86_64__)
    return __rdtsc();
#else
    return 0;  // never read: tsc_usable() is false
#endif
}

struct Anchor {
    std::uint64_t ticks;
    WallNanos wall;
};

/// system_clock read between two TSC reads, placed at their middle: of three
/// tries, the one whose TSC reads came closest (a try the thread was
/// preempted in is left).
Anchor read_anchor() noexcept {
    Anchor best{};
    std::uint64_t best_span = std::numeric_limits<std::uint64_t>::max();
    for (int i = 0; i < 3; ++i) {
        const std::uint64_t before = ticks();
        const WallNanos wall = system_now();
        const std::uint64_t span = ticks() - before;
        if (span < best_span) {
            best_span = span;
            best = Anchor{before + span / 2, wall};
        }
    }
    return best;
}

}  // namespace

bool WallClock::tsc_usable() noexcept {
#if defined(__x86_64__)
    const int fd = ::open("/sys/devices/system/clocksource/clocksource0/available_clocksource", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    std::array<char, 256> text{};
    ssize_t n = 0;
    do {
        n = ::read(fd, text.data(), text.size() - 1);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    if (n <= 0) return false;
    // Names separated by spaces, ending with a newline.
    for (const char* p = text.data(); *p != '\0';) {
        const std::size_t len = std::strcspn(p, " \n");
        if (len == 3 && std::strncmp(p, "tsc", 3) == 0) return true;
        p += len;
        p += std::strspn(p, " \n");
    }
    return false;
#else
    return false;
#endif
}

WallNanos WallClock::now() noexcept {
    if (!use_tsc_) return system_now();
    const std::uint64_t t = ticks();
    for (;;) {
        const std::uint32_t sequence = sequence_.load(std::memory_order_acquire);
        const std::uint64_t at = ticks_.load(std::memory_order_relaxed);
        const WallNanos wall = wall_.load(std::memory_order_relaxed);
        const std::uint64_t rate = rate_.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (sequence_.load(std::memory_order_relaxed) != sequence) continue;  // re-anchored meanwhile
        if ((sequence & 1) != 0) return system_now();                          // being re-anchored
        const auto since = static_cast<std::int64_t>(t - at);
        if (at == 0 || since >= static_cast<std::int64_t>(reanchor_ticks)) return reanchor();
        // Before the anchor (another thread re-anchored after this read's
        // tick), or no rate yet: system_clock's own.
        if (since < 0 || rate == 0) return system_now();
        // since < 2^24 and rate < 2^34 (a TSC of 0.25 GHz or more): no overflow.
        return wall + static_cast<WallNanos>((static_cast<std::uint64_t>(since) * rate) >> 32);
    }
}

WallNanos WallClock::reanchor() noexcept {
    if (reanchoring_.test_and_set(std::memory_order_acquire)) return system_now();  // another reader does it
    const std::uint64_t last_ticks = ticks_.load(std::memory_order_relaxed);
    const WallNanos last_wall = wall_.load(std::memory_order_relaxed);
    std::uint64_t rate = rate_.load(std::memory_order_relaxed);
    const Anchor a = read_anchor();
    // Another reader re-anchored since this one looked: a rate measured
    // over so short a span would be mostly the anchors' own error.
    if (last_ticks != 0 && a.ticks - last_ticks < reanchor_ticks) {
        reanchoring_.clear(std::memory_order_release);
        return a.wall;
    }
    if (last_ticks != 0 && a.wall > last_wall) {
        const double measured = static_cast<double>(a.wall - last_wall) * 4294967296.0 /
                                static_cast<double>(a.ticks - last_ticks);
        // A rate more than 0.1% off the last one is no rate: the clock was
        // set between the anchors, NTP began slewing it faster than 1,000
        // ppm, or the TSC's frequency changed. The new anchor takes the
        // step, and reads are system_clock's until the next anchor measures
        // the rate afresh. (Two anchors a span apart measure it within
        // some 10 ppm: their error is tens of ns in 7 ms.)
        const auto known = static_cast<double>(rate);
        if (measured < 1.0 || measured >= 17179869184.0) {  // 2^34: see now()
            rate = 0;
        } else if (rate == 0 || (measured > known * 1023 / 1024 && measured < known * 1025 / 1024)) {
            rate = static_cast<std::uint64_t>(measured + 0.5);
        } else {
            rate = 0;
        }
    }
    const std::uint32_t sequence = sequence_.load(std::memory_order_relaxed);
    sequence_.store(sequence + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    ticks_.store(a.ticks, std::memory_order_relaxed);
    wall_.store(a.wall, std::memory_order_relaxed);
    rate_.store(rate, std::memory_order_relaxed);
    sequence_.store(sequence + 2, std::memory_order_release);
    reanchoring_.clear(std::memory_order_release);
    return a.wall;
}

WallNanos wall_now() noexcept {
    static WallClock clock(WallClock::tsc_usable());
    return clock.now();
}

}  // namespace atasker::detail
