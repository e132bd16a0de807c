// Worker recycling on a fiber loop's own path: a co_mp_apply awaited from an
// aloop fiber is sent and completed by the loop itself, and the call that
// takes its worker to max_tasks_per_worker ends that worker there; the next
// call starts a fresh one.
//
// Own main: at::init() must fork the zygote before anything starts a thread.
// Fibers switch stacks, which ThreadSanitizer cannot follow: suite 'fiber'.

#include <doctest/doctest.h>

#include <unistd.h>

#include <map>
#include <string>
#include <utility>

#include <atasker/atasker.hpp>

#include "test_support.hpp"

namespace at = atasker;

namespace {
// (the worker's pid, x cubed)
const at::MpTask pid_and_cube{"pid_and_cube",
                              [](int x) { return std::pair<int, int>{static_cast<int>(::getpid()), x * x * x}; }};
}  // namespace

TEST_CASE("aloop: with max_tasks_per_worker N and one worker, 3N calls from a loop's fiber run in exactly 3 "
          "processes, N each" * doctest::timeout(60)) {
    constexpr int n = 7;
    test_support::LogCapture log(at::LogLevel::debug);
    at::TaskSupervisor sup;
    sup.set_mp_pool({.pool_size = 1, .max_tasks_per_worker = n});
    sup.start();
    at::ALoop& loop = sup.create_aloop("recycling");
    const auto [per_pid, wrong] = loop.run([&sup] {
        std::map<int, int> count;
        int bad = 0;
        for (int i = 0; i < 3 * n; ++i) {
            const auto [pid, cubed] = at::co_mp_apply(pid_and_cube, {.supervisor = &sup}, i).get();
            ++count[pid];
            bad += cubed == i * i * i ? 0 : 1;
        }
        return std::pair{count, bad};
    });
    CHECK(sup.stop_aloop("recycling"));
    sup.stop();
    CHECK(wrong == 0);
    CHECK(per_pid.size() == 3);
    for (const auto& [pid, count] : per_pid) CHECK(count == n);
    CHECK(per_pid.count(static_cast<int>(::getpid())) == 0);
    // Each worker was replaced when it reached the limit, the last one too.
    const auto lines = log.at(at::LogLevel::debug, "process pool: worker process ");
    REQUIRE(lines.size() == 3);
    for (const auto& line : lines) CHECK(line.find("replaced after 7 tasks") != std::string::npos);
}

int main(int argc, char** argv) {
    at::init({.max_workers = 2});
    doctest::Context context(argc, argv);
    return context.run();
}
