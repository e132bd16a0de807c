// Fibers awaiting process tasks in an aloop: one named thread runs many
// Boost.Fiber fibers; a fiber that waits on co_mp_apply()'s future suspends
// only itself, and the loop's thread runs the other fibers meanwhile. From an
// aloop's fibers, a process task that can start at once goes straight to an
// idle worker process: the shortest round trip the library has.
#include <atasker/atasker.hpp>

#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <boost/fiber/all.hpp>
#include <fmt/core.h>

namespace at = atasker;

inline const at::MpTask square{"square", [](int x) { return x * x; }};
inline const at::MpTask fail{"fail", [](int) -> int { throw std::runtime_error("no such record"); }};

void expect(bool ok, const char* what) {
    if (!ok) throw std::logic_error(fmt::format("unexpected result: {}", what));
}

int main() try {
    at::init();  // first thing: process tasks need it before any thread exists

    auto& sup = at::task_supervisor;
    sup.set_mp_pool({.pool_size = 2});
    sup.start();

    at::ALoop& loop = sup.create_aloop("io");  // stopped by sup.stop()

    // 1. run(): runs a fiber on the loop and blocks this thread for its result.
    // Inside, ten process tasks are in flight at once; each get() suspends
    // only this fiber.
    const int sum = loop.run([] {
        std::vector<boost::fibers::future<int>> squares;
        for (int i = 1; i <= 10; ++i) squares.push_back(at::co_mp_apply(square, std::tuple{i}));
        int total = 0;
        for (auto& f : squares) total += f.get();
        return total;
    });
    expect(sum == 385, "the sum of the first ten squares");

    // 2. background_task(): starts a fiber and returns a future for its
    // result. Eight fibers, each awaiting a process task and a thread task
    // (co_apply), run side by side on the loop's one thread.
    std::vector<boost::fibers::future<int>> fibers;
    for (int i = 0; i < 8; ++i) {
        fibers.push_back(loop.background_task([i] {
            auto sq = at::co_mp_apply(square, std::tuple{i}, {.priority = at::Priority::high});
            auto twice = at::co_apply([](int x) { return 2 * x; }, std::tuple{i});
            return sq.get() + twice.get();
        }));
    }
    for (int i = 0; i < 8; ++i)
        expect(fibers[static_cast<std::size_t>(i)].get() == i * i + 2 * i, "a fiber's result");  // blocks main only

    // 3. A process task's exception reaches the awaiting fiber as RemoteError.
    const std::string message = loop.run([] {
        try {
            (void)at::co_mp_apply(fail, std::tuple{1}).get();
            return std::string("no error");
        } catch (const at::RemoteError& e) {
            return fmt::format("{}: {}", e.type_name(), e.what());
        }
    });
    expect(message == "std::runtime_error: no such record", "the error as the fiber saw it");

    // 4. Fibers of one loop talk through Boost.Fiber's own channels.
    const int received = loop.run([] {
        boost::fibers::buffered_channel<int> channel{8};
        boost::fibers::fiber producer([&channel] {
            for (int i = 1; i <= 3; ++i) channel.push(at::co_mp_apply(square, std::tuple{i}).get());
            channel.close();
        });
        int total = 0;
        for (int v : channel) total += v;  // pop until closed
        producer.join();
        return total;
    });
    expect(received == 14, "1 + 4 + 9 through a channel");

    sup.stop();  // stops the aloop, then the pools
    fmt::print("fibers: ok ({} and {})\n", sum, received);
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "fibers: {}\n", e.what());
    return 1;
}
