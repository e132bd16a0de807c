// The wall clock of task records (core/wall_clock.hpp): every read lies
// within WallClock::tolerance of system_clock read around it, on one thread
// and on several at once, before and after it scales TSC ticks. Private
// header, tested directly.
//
// Except around a step of system_clock (it was set): the clock follows a
// step at its next anchor, a few milliseconds later, and reads until then
// are off by the step. A VM restored from a snapshot has its clock set that
// way while tests run, so a read within step_grace of a step the kernel
// reports (a timerfd with TFD_TIMER_CANCEL_ON_SET) is not counted; the test
// says how many steps it saw.

#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <latch>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include <sys/timerfd.h>
#include <unistd.h>

#include "core/wall_clock.hpp"

namespace at = atasker;
using at::detail::WallClock;
using at::detail::WallNanos;

namespace {

template <class Clock>
WallNanos nanos_of() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}
WallNanos system_nanos() { return nanos_of<std::chrono::system_clock>(); }
WallNanos steady_nanos() { return nanos_of<std::chrono::steady_clock>(); }

/// Tells when system_clock was set (stepped): a timerfd armed with
/// TFD_TIMER_CANCEL_ON_SET, which the kernel cancels at every step.
class ClockSets {
public:
    ClockSets() : fd_(::timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC)) {
        REQUIRE(fd_ >= 0);
        arm();
    }
    ~ClockSets() { ::close(fd_); }
    ClockSets(const ClockSets&) = delete;
    ClockSets& operator=(const ClockSets&) = delete;

    /// Whether system_clock was set since the last call (or since made).
    bool set_since() {
        std::uint64_t expirations = 0;
        if (::read(fd_, &expirations, sizeof expirations) >= 0 || errno != ECANCELED) return false;
        arm();
        return true;
    }

private:
    void arm() {
        itimerspec never{};
        never.it_value.tv_sec = std::numeric_limits<time_t>::max() / 2;  // far beyond any test
        REQUIRE(::timerfd_settime(fd_, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &never, nullptr) == 0);
    }

    int fd_;
};

/// How long after a step of system_clock reads are not counted: the clock
/// takes the step at its next anchor (at most reanchor_ticks, some 17 ms at
/// a 1 GHz TSC), and the rate measured across the step is dropped, so the
/// anchor after that one (as long again) measures it afresh.
constexpr WallNanos step_grace = 100'000'000;

struct Outside {
    std::size_t reads = 0;  ///< outside the tolerance, not around a step
    std::size_t steps = 0;  ///< times system_clock was set meanwhile
};

/// Reads `clock` between two reads of system_clock, `n` times after it
/// scales ticks (or at once where it never does); the reads that fell
/// outside the tolerance around the pair. `sets` was made before `clock`:
/// a step before it could not be seen, and the clock would lag it.
Outside reads_outside(WallClock& clock, std::size_t n, ClockSets& sets) {
    const WallNanos slack = std::chrono::nanoseconds(WallClock::tolerance).count();
    Outside out;
    // Reads outside wait for two looks at `sets` before they count: the
    // kernel may report a step a moment after reads see it.
    std::size_t earlier = 0;
    std::size_t latest = 0;
    WallNanos counted_from = 0;  // steady_clock: reads before this are around a step
    std::size_t reads = 0;
    const auto read = [&] {
        const WallNanos start = steady_nanos();
        const WallNanos before = system_nanos();
        const WallNanos ours = clock.now();
        const WallNanos after = system_nanos();
        if ((ours < before - slack || ours > after + slack) && start >= counted_from) ++latest;
        if (++reads % 16 != 0) return;
        if (sets.set_since()) {
            ++out.steps;
            earlier = latest = 0;
            counted_from = steady_nanos() + step_grace;
        } else {
            out.reads += earlier;
            earlier = std::exchange(latest, 0);
        }
    };
    // Until a rate is known (the first reanchor_ticks): system_clock's own.
    while (WallClock::tsc_usable() && !clock.scaled()) read();
    for (std::size_t i = 0; i < n; ++i) read();
    if (sets.set_since()) {
        ++out.steps;
    } else {
        out.reads += earlier + latest;
    }
    if (out.steps > 0)
        MESSAGE("system_clock was set " << out.steps << " time(s) meanwhile: reads around that not counted");
    return out;
}

}  // namespace

TEST_CASE("wall clock: reads lie within its tolerance of system_clock, before and after it scales ticks" *
          doctest::timeout(60)) {
    ClockSets sets;
    WallClock clock(WallClock::tsc_usable());
    if (!WallClock::tsc_usable()) MESSAGE("this kernel does not offer the TSC as a clocksource: reads are system_clock's");
    const Outside out = reads_outside(clock, 2'000'000, sets);  // some 100 ms: many re-anchors
    CHECK(out.reads == 0);
    // A step also drops the rate: reads are system_clock's until anchors
    // measure it afresh.
    if (out.steps == 0) CHECK(clock.scaled() == WallClock::tsc_usable());
}

TEST_CASE("wall clock: threads reading and re-anchoring at once all read within its tolerance" *
          doctest::timeout(60)) {
    constexpr int threads = 4;
    std::vector<ClockSets> sets(threads);  // each thread learns of every step on its own
    WallClock clock(WallClock::tsc_usable());
    std::vector<Outside> outside(threads);
    std::latch go(threads);
    std::vector<std::thread> readers;
    for (int i = 0; i < threads; ++i)
        readers.emplace_back([&, i] {
            go.arrive_and_wait();
            outside[static_cast<std::size_t>(i)] = reads_outside(clock, 500'000, sets[static_cast<std::size_t>(i)]);
        });
    for (auto& t : readers) t.join();
    for (const Outside& o : outside) CHECK(o.reads == 0);
}

TEST_CASE("wall clock: one told not to use the TSC reads system_clock itself" * doctest::timeout(30)) {
    WallClock clock(false);
    for (int i = 0; i < 100'000; ++i) {
        const WallNanos before = system_nanos();
        const WallNanos ours = clock.now();
        const WallNanos after = system_nanos();
        if (after < before) continue;  // system_clock was set back meanwhile
        REQUIRE(ours >= before);
        REQUIRE(ours <= after);
    }
    CHECK_FALSE(clock.scaled());
}
