// Scenario 10: a value larger than the worker slot. A 256 MiB
// std::vector<std::byte> crosses through a shared-memory segment made for
// the call: as the argument (the worker returns its size), as the result
// (the worker makes it), and both ways (the worker returns what it got).
// Against a bare memcpy of the same bytes into a fresh vector.
#include <chrono>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "bench.hpp"
#include "mp_tasks.hpp"

namespace atasker_bench {

namespace {

using Bytes = std::vector<std::byte>;
constexpr std::size_t value_size = std::size_t{256} << 20;

double gb_per_s(double ms) { return ms > 0 ? static_cast<double>(value_size) / 1e9 / (ms / 1e3) : 0; }

#if ATASKER_BENCH_HAVE_MP
inline const atasker::MpTask bench_size_of{"atasker_bench.size_of", [](const Bytes& v) { return v.size(); }};
inline const atasker::MpTask bench_make{"atasker_bench.make", [](std::size_t n) { return Bytes(n, std::byte{1}); }};
inline const atasker::MpTask bench_echo{"atasker_bench.echo", [](Bytes v) { return v; }};
#endif

template <class F>
double time_ms(F&& f) {
    const auto t0 = Clock::now();
    f();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

void run_large_values(const Config& cfg, Report& report) {
    Section& s = report.section("large", "10. A 256 MiB std::vector<std::byte> through a worker process (one call "
                                         "per round)");
    s.note("larger than the 1 MiB slot: each way it crosses through a /dev/shm segment made for the call "
           "(measured and encoded on one side, mapped and decoded on the other); GB/s counts the 256 MiB once");
    const std::string group = "256 MiB";
    RowSet rows;
    std::vector<Measure> measures;
    const Bytes value(value_size, std::byte{7});
#if ATASKER_BENCH_HAVE_MP
    AtaskerBothPools pools(1);
    const std::string ours = "atasker-cpp background_task(MpTask), pool of 1";
    measures.push_back([&](RowSet& rs) {
        const double in = time_ms([&] {
            if (atasker::background_task(bench_size_of, pools.options())(value).get() != value_size)
                throw std::runtime_error("atasker-cpp: the argument arrived short");
        });
        const double out = time_ms([&] {
            if (atasker::background_task(bench_make, pools.options())(value_size).get().size() != value_size)
                throw std::runtime_error("atasker-cpp: the result arrived short");
        });
        const double both = time_ms([&] {
            if (atasker::background_task(bench_echo, pools.options())(value).get().size() != value_size)
                throw std::runtime_error("atasker-cpp: the echo arrived short");
        });
        rs.at(group, ours, "argument in", "ms", Better::lower, true).samples.push_back(in);
        rs.at(group, ours, "argument in, rate", "GB/s", Better::higher, true).samples.push_back(gb_per_s(in));
        rs.at(group, ours, "result out", "ms", Better::lower, true).samples.push_back(out);
        rs.at(group, ours, "result out, rate", "GB/s", Better::higher, true).samples.push_back(gb_per_s(out));
        rs.at(group, ours, "both ways", "ms", Better::lower, true).samples.push_back(both);
        rs.at(group, ours, "both ways, rate", "GB/s", Better::higher, true).samples.push_back(gb_per_s(both));
    });
#else
    s.pending(group, "atasker-cpp background_task(MpTask)", mp_pending);
#endif
    const std::string floor = "memcpy into a fresh vector (bare)";
    measures.push_back([&](RowSet& rs) {
        Bytes copy;
        const double ms = time_ms([&] {
            copy.resize(value_size);
            std::memcpy(copy.data(), value.data(), value_size);
        });
        if (copy[value_size - 1] != std::byte{7}) throw std::runtime_error("memcpy floor: wrong copy");
        rs.at(group, floor, "one copy", "ms", Better::lower, false).samples.push_back(ms);
        rs.at(group, floor, "one copy, rate", "GB/s", Better::higher, false).samples.push_back(gb_per_s(ms));
    });
    run_rounds(cfg.slow_rounds(), measures, rows);
    rows.move_to(s);
    report.print_section(s);
}

}  // namespace atasker_bench
