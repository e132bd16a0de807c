#include "cpu_handoff.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <sched.h>

namespace atasker_bench {

namespace {

using Clock = std::chrono::steady_clock;

bool pin_this_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0;
}

/// One run: `trips` timed round trips between this thread (on `here`) and a
/// peer (on `there`), or fewer if `deadline` comes first (a busy CPU); ns one
/// way.
std::optional<double> one_run(int here, int there, std::int64_t trips, Clock::time_point deadline) {
    // The counter, alone on its cache line (the alignment pads the struct to
    // the whole line): odd, the peer's turn; even, ours; negative, the peer
    // stops.
    struct alignas(64) Ball {
        std::atomic<std::int64_t> value{0};
    } line;
    std::atomic<std::int64_t>& ball = line.value;
    std::atomic<bool> peer_pinned{true};
    std::thread peer([&] {
        if (!pin_this_thread(there)) peer_pinned.store(false);
        for (;;) {
            const std::int64_t v = ball.load(std::memory_order_acquire);
            if (v < 0) return;
            if ((v & 1) != 0) ball.store(v + 1, std::memory_order_release);
        }
    });
    // The first trips are not timed: the peer's CPU may be waking up.
    const std::int64_t untimed = trips / 4;
    std::int64_t done = 0;
    Clock::time_point t0;
    Clock::time_point t1;
    if (pin_this_thread(here)) {
        for (bool late = false; done < untimed + trips; ++done) {
            if (done == untimed) t0 = Clock::now();
            const std::int64_t v = 2 * done;
            ball.store(v + 1, std::memory_order_release);
            for (std::uint32_t spins = 1; ball.load(std::memory_order_acquire) != v + 2 && !late; ++spins)
                late = (spins & 0xFFFFU) == 0 && Clock::now() > deadline;
            if (late) break;
        }
        t1 = Clock::now();
    }
    ball.store(-1, std::memory_order_release);
    peer.join();
    const std::int64_t timed = done - untimed;
    if (timed < 100 || !peer_pinned.load()) return std::nullopt;
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / (2.0 * static_cast<double>(timed));
}

}  // namespace

std::optional<double> cpu_handoff_ns() {
    cpu_set_t mine;
    if (sched_getaffinity(0, sizeof mine, &mine) != 0) return std::nullopt;
    std::array<int, 2> cpus{};
    std::size_t found = 0;
    for (int c = 0; c < CPU_SETSIZE && found < cpus.size(); ++c)
        if (CPU_ISSET(c, &mine)) cpus[found++] = c;
    if (found < cpus.size()) return std::nullopt;
    std::vector<double> runs;
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(500);
    for (int i = 0; i < 5 && Clock::now() < deadline; ++i)
        if (const auto ns = one_run(cpus[0], cpus[1], 20'000, deadline)) runs.push_back(*ns);
    (void)sched_setaffinity(0, sizeof mine, &mine);
    if (runs.empty()) return std::nullopt;
    std::sort(runs.begin(), runs.end());
    return runs[runs.size() / 2];
}

}  // namespace atasker_bench
