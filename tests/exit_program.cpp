// Ends a program the ways real programs end, without calling stop(): each
// scenario (argv[1]) leaves something running and then returns from main or
// calls std::exit. The test (meson, one per scenario) passes when the
// process exits 0: a crash or an abort at exit fails it, and a hang fails
// it through the test's timeout.

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <latch>
#include <map>
#include <stop_token>
#include <string>
#include <thread>

#include <boost/fiber/operations.hpp>

#include <atasker/atasker.hpp>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;

namespace {

const at::MpTask slow_square{"exit_program.slow_square", [](int x) {
                                 std::this_thread::sleep_for(20ms);  // still running at exit
                                 return x * x;
                             }};

int default_aloop_used() {
    at::task_supervisor.start();
    return at::default_aloop().run([] { return 1; }) == 1 ? 0 : 1;
}

int named_aloop_idle() {
    at::task_supervisor.start();
    at::ALoop& loop = at::task_supervisor.create_aloop("io");
    return loop.run([] { return 2; }) == 2 ? 0 : 1;
}

int aloop_fiber_sleeping() {
    at::task_supervisor.start();
    at::ALoop& loop = at::task_supervisor.create_aloop("io");
    std::latch asleep{1};
    auto f = loop.background_task([&asleep] {
        asleep.count_down();
        boost::this_fiber::sleep_for(50ms);  // still asleep when main returns
        return 3;
    });
    asleep.wait();
    return 0;
}

int aloop_awaiting_process_task() {
    at::init();
    at::task_supervisor.set_mp_pool({.pool_size = 1});
    at::task_supervisor.start();
    std::latch put{1};
    auto f = at::default_aloop().background_task([&put] {
        auto r = at::co_mp_apply(slow_square, std::tuple{4});
        put.count_down();
        return r.get();
    });
    put.wait();
    return 0;
}

int aloop_fiber_in_task_get() {
    at::task_supervisor.start();
    std::latch waiting{1};
    auto f = at::default_aloop().background_task([&waiting] {
        auto t = at::background_task([] {
            std::this_thread::sleep_for(20ms);  // still running at exit
            return 2;
        })();
        waiting.count_down();
        return t.get();  // suspends the fiber, not the loop
    });
    waiting.wait();
    return 0;
}

int worker_running() {
    at::task_supervisor.start();
    // Static, as a program's long-lived worker often is: destroyed at exit,
    // before the default supervisor.
    static std::latch ticked{1};
    static auto worker = at::background_worker(
        [] {
            if (ticked.try_wait()) return;
            ticked.count_down();
        },
        {.interval = 1ms});
    worker.start();
    ticked.wait();
    return 0;
}

int process_task_running() {
    at::init();
    at::task_supervisor.set_mp_pool({.pool_size = 2});
    at::task_supervisor.start();
    auto t = at::background_task(slow_square)(5);
    (void)t;
    return 0;
}

int thread_task_running() {
    at::task_supervisor.start();
    std::latch running{1};
    // Asked to stop by the supervisor's destructor.
    (void)at::background_task([&running](std::stop_token token) {
        running.count_down();
        return test_support::wait_for_stop(token);
    })();
    running.wait();
    return 0;
}

int exit_from_main() {
    at::task_supervisor.start();
    (void)at::default_aloop().run([] { return 1; });
    std::exit(0);
}

int exit_from_task() {
    at::task_supervisor.start();
    (void)at::background_task([] { std::exit(0); })();
    std::promise<void>().get_future().wait();  // forever: the task's exit ends the program
    return 1;
}

int stop_from_task_then_return() {
    at::task_supervisor.start();
    (void)at::background_task([] { at::task_supervisor.stop({.wait = false}); })();
    at::task_supervisor.block();
    return 0;
}

int stop_from_aloop_fiber() {
    at::task_supervisor.start();
    return at::default_aloop().run([] { return at::task_supervisor.stop(); }) ? 0 : 1;
}

int handle_outlives_supervisor() {
    std::optional<at::Task<int>> handle;
    {
        at::TaskSupervisor mine;
        mine.start();
        handle = at::background_task([] { return 6; }, {.supervisor = &mine})();
        if (handle->get() != 6) return 1;
    }
    // The supervisor is gone: the handle still answers.
    const bool ok = handle->get() == 6 && handle->status() == at::TaskStatus::completed && !handle->cancel() &&
                    !handle->info().has_value();
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const std::map<std::string, std::function<int()>> scenarios{
        {"default-aloop", default_aloop_used},
        {"named-aloop-idle", named_aloop_idle},
        {"aloop-fiber-sleeping", aloop_fiber_sleeping},
        {"aloop-awaiting-process-task", aloop_awaiting_process_task},
        {"aloop-fiber-in-task-get", aloop_fiber_in_task_get},
        {"worker-running", worker_running},
        {"process-task-running", process_task_running},
        {"thread-task-running", thread_task_running},
        {"exit-from-main", exit_from_main},
        {"exit-from-task", exit_from_task},
        {"stop-from-task-then-return", stop_from_task_then_return},
        {"stop-from-aloop-fiber", stop_from_aloop_fiber},
        {"handle-outlives-supervisor", handle_outlives_supervisor},
    };
    if (argc != 2 || !scenarios.contains(argv[1])) {
        std::fprintf(stderr, "usage: exit_program SCENARIO\n");
        for (const auto& [name, fn] : scenarios) std::fprintf(stderr, "  %s\n", name.c_str());
        return 2;
    }
    return scenarios.at(argv[1])();
}
