// The wall clock of task records (core/wall_clock.hpp): every read lies
// within WallClock::tolerance of system_clock read around it, on one thread
// and on several at once, before and after it scales TSC ticks. Private
// header, tested directly.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <latch>
#include <thread>
#include <vector>

#include "core/wall_clock.hpp"

namespace at = atasker;
using at::detail::WallClock;
using at::detail::WallNanos;

namespace {

WallNanos system_nanos() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Reads `clock` between two reads of system_clock, `n` times after it
/// scales ticks (or at once where it never does); the reads that fell
/// outside the tolerance around the pair.
std::size_t reads_outside(WallClock& clock, std::size_t n) {
    const WallNanos slack = std::chrono::nanoseconds(WallClock::tolerance).count();
    std::size_t outside = 0;
    const auto read = [&] {
        const WallNanos before = system_nanos();
        const WallNanos ours = clock.now();
        const WallNanos after = system_nanos();
        if (ours < before - slack || ours > after + slack) ++outside;
    };
    // Until a rate is known (the first reanchor_ticks): system_clock's own.
    while (WallClock::tsc_usable() && !clock.scaled()) read();
    for (std::size_t i = 0; i < n; ++i) read();
    return outside;
}

}  // namespace

TEST_CASE("wall clock: reads lie within its tolerance of system_clock, before and after it scales ticks" *
          doctest::timeout(60)) {
    WallClock clock(WallClock::tsc_usable());
    if (!WallClock::tsc_usable()) MESSAGE("this kernel does not offer the TSC as a clocksource: reads are system_clock's");
    CHECK(reads_outside(clock, 2'000'000) == 0);  // some 100 ms: many re-anchors
    CHECK(clock.scaled() == WallClock::tsc_usable());
}

TEST_CASE("wall clock: threads reading and re-anchoring at once all read within its tolerance" *
          doctest::timeout(60)) {
    WallClock clock(WallClock::tsc_usable());
    constexpr int threads = 4;
    std::vector<std::size_t> outside(threads);
    std::latch go(threads);
    std::vector<std::thread> readers;
    for (int i = 0; i < threads; ++i)
        readers.emplace_back([&, i] {
            go.arrive_and_wait();
            outside[static_cast<std::size_t>(i)] = reads_outside(clock, 500'000);
        });
    for (auto& t : readers) t.join();
    for (const std::size_t n : outside) CHECK(n == 0);
}

TEST_CASE("wall clock: one told not to use the TSC reads system_clock itself" * doctest::timeout(30)) {
    WallClock clock(false);
    for (int i = 0; i < 100'000; ++i) {
        const WallNanos before = system_nanos();
        const WallNanos ours = clock.now();
        const WallNanos after = system_nanos();
        REQUIRE(ours >= before);
        REQUIRE(ours <= after);
    }
    CHECK_FALSE(clock.scaled());
}
