// at::map and at::map_tasks: results in input order, on threads and in
// worker processes (chunks carried in one request each), errors that name
// the item, crashes that fail one item only.
// Own main: at::init() must fork the zygote before anything starts a thread.
#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <atomic>
#include <numeric>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "crash_task.hpp"

namespace at = atasker;

namespace {

inline const at::MpTask square{"square", [](int x) { return x * x; }};
inline const at::MpTask add{"add", [](int a, int b) { return a + b; }};
inline const at::MpTask checked_root{"checked_root", [](int x) {
    if (x < 0) throw std::domain_error("negative: " + std::to_string(x));
    return x / 2;
}};
// Dies on 7, returns its input otherwise.
inline const at::MpTask crash_on_seven{"crash_on_seven", [](int x) {
    if (x == 7) test_support::crash_worker(0);
    return x;
}};
// Results of 48 KiB each: a chunk's answers take several of the 64 KiB slot's chunks.
inline const at::MpTask blob{"blob", [](int x) { return std::string(48 * 1024, static_cast<char>('a' + x % 26)); }};

std::vector<int> iota(int n) {
    std::vector<int> v(static_cast<std::size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
}

}  // namespace

TEST_CASE("map: a thread callable over 100k inputs returns every result in input order" * doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 2});
    sup.start();
    const std::vector<int> in = iota(100000);
    const std::vector<long> out = at::map([](int x) { return 3L * x; }, in, {.supervisor = &sup});
    REQUIRE(out.size() == in.size());
    for (std::size_t i = 0; i < in.size(); ++i) REQUIRE(out[i] == 3L * in[i]);
    // Records: about four chunk tasks per thread, not one per input.
    CHECK(sup.get_info().records <= 8 + 1);
    sup.stop();
}

TEST_CASE("map: tuple items are spread over the function's parameters; a void function returns nothing" *
          doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.start();
    const std::vector<std::tuple<int, std::string>> in{{1, "a"}, {2, "b"}, {3, "c"}};
    const std::vector<std::string> out =
        at::map([](int n, const std::string& s) { return std::string(static_cast<std::size_t>(n), s[0]); }, in,
                {.chunksize = 1, .supervisor = &sup});
    CHECK(out == std::vector<std::string>{"a", "bb", "ccc"});
    std::atomic<int> sum{0};
    at::map([&sum](int x) { sum += x; }, iota(101), {.chunksize = 10, .supervisor = &sup});
    CHECK(sum == 5050);
    const std::vector<int> none = at::map([](int x) { return x; }, std::vector<int>{}, {.supervisor = &sup});
    CHECK(none.empty());
    sup.stop();
}

TEST_CASE("map: every item runs, and the error names the first item that failed" * doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.start();
    std::atomic<int> ran{0};
    try {
        at::map(
            [&ran](int x) {
                ++ran;
                if (x == 17 || x == 90) throw std::invalid_argument("bad " + std::to_string(x));
                return x;
            },
            iota(100), {.chunksize = 8, .supervisor = &sup});
        FAIL("map did not throw");
    } catch (const at::MapError& e) {
        CHECK(e.index() == 17);
        CHECK(e.failures() == 2);
        CHECK(std::string(e.what()) == "at::map: item 17 of 100 failed (the first of 2 that failed): bad 17");
        CHECK_THROWS_AS(std::rethrow_exception(e.error()), std::invalid_argument);
    }
    CHECK(ran == 100);
    sup.stop();
}

TEST_CASE("map: an MpTask over 100k inputs runs in the workers, chunked, in input order" * doctest::timeout(60)) {
    at::task_supervisor.set_mp_pool({.pool_size = 2});
    // 100k inputs whose squares fit an int (none past 46,340).
    std::vector<int> in = iota(100000);
    for (int& v : in) v %= 46000;
    const std::vector<int> out = at::map(square, in);
    REQUIRE(out.size() == in.size());
    for (std::size_t i = 0; i < in.size(); ++i) REQUIRE(out[i] == in[i] * in[i]);
    // Tuple items for a task of two arguments, and a chunk size of the caller's.
    std::vector<std::tuple<int, int>> pairs;
    for (int i = 0; i < 1000; ++i) pairs.emplace_back(i, 2 * i);
    const std::vector<int> sums = at::map(add, pairs, {.priority = at::Priority::high, .chunksize = 7});
    for (int i = 0; i < 1000; ++i) REQUIRE(sums[static_cast<std::size_t>(i)] == 3 * i);
}

TEST_CASE("map: a chunk whose arguments and results overflow the slot is carried in several requests" *
          doctest::timeout(60)) {
    // 64 KiB slots (main): 20 results of 48 KiB in one chunk.
    const std::vector<std::string> out = at::map(blob, iota(20), {.chunksize = 20});
    REQUIRE(out.size() == 20);
    for (int i = 0; i < 20; ++i) {
        CHECK(out[static_cast<std::size_t>(i)].size() == 48 * 1024);
        CHECK(out[static_cast<std::size_t>(i)][0] == static_cast<char>('a' + i));
    }
    // 10k arguments of one chunk do not fit one 64 KiB request: the rest follows.
    const std::vector<int> in = iota(10000);
    const std::vector<int> out2 = at::map(square, in, {.chunksize = 10000});
    for (std::size_t i = 0; i < in.size(); ++i) REQUIRE(out2[i] == in[i] * in[i]);
}

TEST_CASE("map: a process task that throws fails its item only, named with its remote error" *
          doctest::timeout(60)) {
    std::vector<int> in = iota(50);
    in[33] = -4;
    try {
        at::map(checked_root, in, {.chunksize = 16});
        FAIL("map did not throw");
    } catch (const at::MapError& e) {
        CHECK(e.index() == 33);
        CHECK(e.failures() == 1);
        CHECK(std::string(e.what()) == "at::map: item 33 of 50 failed: std::domain_error: negative: -4");
        try {
            std::rethrow_exception(e.error());
        } catch (const at::RemoteError& remote) {
            CHECK(remote.type_name() == "std::domain_error");
        }
    }
}

TEST_CASE("map: an item that crashes its worker fails alone; the rest of its chunk runs in a fresh worker" *
          doctest::timeout(60)) {
    const std::vector<int> in = iota(20);
    try {
        at::map(crash_on_seven, in, {.chunksize = 20});
        FAIL("map did not throw");
    } catch (const at::MapError& e) {
        CHECK(e.index() == 7);
        CHECK(e.failures() == 1);
        CHECK(std::string(e.what()) == "at::map: item 7 of 20 failed: signal: worker process killed by signal 11 (SIGSEGV)");
    }
    // The pool goes on.
    CHECK(at::map(crash_on_seven, std::vector<int>{1, 2, 3}) == std::vector<int>{1, 2, 3});
}

TEST_CASE("map_tasks: one handle per input, in input order, for callables and MpTasks" * doctest::timeout(60)) {
    std::vector<at::Task<int>> ts = at::map_tasks(square, iota(10), {.priority = at::Priority::low});
    REQUIRE(ts.size() == 10);
    for (int i = 0; i < 10; ++i) CHECK(ts[static_cast<std::size_t>(i)].get() == i * i);
    CHECK(ts[3].info()->priority == at::Priority::low);
    std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}};
    auto sums = at::map_tasks(add, pairs);
    CHECK(sums[1].get() == 7);
    auto doubled = at::map_tasks([](int x) { return 2 * x; }, iota(5));
    CHECK(doubled[4].get() == 8);
    auto joined = at::map_tasks([](int a, int b) { return a * b; }, pairs);
    CHECK(joined[1].get() == 12);
}

TEST_CASE("map: a supervisor that is not started refuses the map and says what to do" * doctest::timeout(30)) {
    at::TaskSupervisor sup;
    CHECK_THROWS_WITH_AS(at::map([](int x) { return x; }, iota(10), {.supervisor = &sup}),
                         "task supervisor is not started; call start() before putting tasks", at::Error);
}

int main(int argc, char** argv) {
    at::init({.max_workers = 4, .slot_size = 64 * 1024});
    at::task_supervisor.start();
    doctest::Context context(argc, argv);
    const int rc = context.run();
    at::task_supervisor.stop();
    return rc;
}
