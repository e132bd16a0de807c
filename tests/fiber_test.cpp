// co_apply and co_mp_apply awaited from Boost.Fiber fibers: a waiting fiber
// suspends only itself, and its thread keeps running the others.
//
// Own main: at::init() must fork the zygote before anything starts a thread.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/fiber/all.hpp>

#include <atasker/atasker.hpp>

namespace at = atasker;

namespace {
const at::MpTask cube{"cube", [](int x) { return x * x * x; }};
const at::MpTask refuse{"refuse", [](int) -> int { throw std::out_of_range("too far"); }};
}  // namespace

TEST_CASE("fiber: 1,000 fibers on one thread await co_mp_apply while another fiber keeps ticking" *
          doctest::timeout(60)) {
    constexpr int n = 1000;
    std::vector<int> results(n, -1);
    std::atomic<long> ticks{0};
    int suspended_while_ticking = 0;  // fibers whose wait let the ticker run
    bool all_done = false;
    std::thread::id fiber_thread;
    {
        boost::fibers::fiber ticker([&] {
            while (!all_done) {
                ++ticks;
                boost::this_fiber::yield();
            }
        });
        std::vector<boost::fibers::fiber> waiters;
        waiters.reserve(n);
        for (int i = 0; i < n; ++i) {
            waiters.emplace_back([&, i] {
                auto f = at::co_mp_apply(cube, std::tuple{i}, {.priority = at::Priority::high});
                const long before = ticks.load();
                results[static_cast<std::size_t>(i)] = f.get();  // suspends this fiber only
                if (ticks.load() > before) ++suspended_while_ticking;
                fiber_thread = std::this_thread::get_id();
            });
        }
        for (auto& w : waiters) w.join();
        all_done = true;
        ticker.join();
    }
    for (int i = 0; i < n; ++i) CHECK(results[static_cast<std::size_t>(i)] == i * i * i);
    CHECK(fiber_thread == std::this_thread::get_id());  // every fiber ran on this thread
    // Had get() blocked the thread, the ticker could not have run during any wait.
    CHECK(suspended_while_ticking > 0);
}

TEST_CASE("fiber: a process task's exception reaches the awaiting fiber as RemoteError" * doctest::timeout(30)) {
    std::string type;
    boost::fibers::fiber([&] {
        try {
            (void)at::co_mp_apply(refuse, std::tuple{1}).get();
        } catch (const at::RemoteError& e) {
            type = e.type_name() + ": " + e.what();
        }
    }).join();
    CHECK(type == "std::out_of_range: too far");
}

TEST_CASE("fiber: co_apply awaits a thread task, with its result or its exception" * doctest::timeout(30)) {
    int value = 0;
    std::string error;
    boost::fibers::fiber([&] {
        value = at::co_apply([](int a, int b) { return a + b; }, std::tuple{2, 3}).get();
        try {
            at::co_apply([] { throw std::runtime_error("thread task failed"); }).get();
        } catch (const std::runtime_error& e) {
            error = e.what();
        }
    }).join();
    CHECK(value == 5);
    CHECK(error == "thread task failed");
}

TEST_CASE("fiber: an aloop's fibers await process tasks; run() blocks the caller for the result" *
          doctest::timeout(30)) {
    at::ALoop& loop = at::task_supervisor.create_aloop("io");
    // run(): one fiber on the loop's thread, its result back on this thread.
    CHECK(loop.run([] { return at::co_mp_apply(cube, std::tuple{3}).get(); }) == 27);
    // background_task(): fibers started on the loop, awaiting at the same time.
    std::vector<boost::fibers::future<int>> futures;
    for (int i = 0; i < 10; ++i)
        futures.push_back(loop.background_task([i] { return at::co_mp_apply(cube, std::tuple{i}).get(); }));
    for (int i = 0; i < 10; ++i) CHECK(futures[static_cast<std::size_t>(i)].get() == i * i * i);
    // A process task's error reaches run()'s caller.
    CHECK_THROWS_AS(loop.run([] { return at::co_mp_apply(refuse, std::tuple{1}).get(); }), at::RemoteError);
    CHECK(at::task_supervisor.stop_aloop("io"));
}

int main(int argc, char** argv) {
    at::init({.max_workers = 4});
    at::task_supervisor.set_thread_pool({.pool_size = 2});
    at::task_supervisor.set_mp_pool({.pool_size = 2});
    at::task_supervisor.start();
    doctest::Context context(argc, argv);
    const int rc = context.run();
    at::task_supervisor.stop();
    return rc;
}
