#include <doctest/doctest.h>

#include <atasker/atasker.hpp>

#include <atomic>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace at = atasker;
using namespace std::chrono_literals;
using test_support::Gate;
using test_support::LogCapture;
using test_support::Trace;

namespace {
std::vector<std::string> names_of(const at::CollectionResult& r) {
    std::vector<std::string> out;
    for (const auto& e : r.results) out.push_back(e.name);
    return out;
}
}  // namespace

TEST_CASE("collections: a function collection runs critical first, FIFO within a priority, here") {
    at::FunctionCollection c;
    Trace trace;
    const auto caller = std::this_thread::get_id();
    c.add("low", [&] { trace.add("low"); }, at::Priority::low);
    c.add("normal1", [&] {
        trace.add("normal1");
        return 1;
    });
    c.add("critical", [&] {
        trace.add("critical");
        return std::string("c");
    }, at::Priority::critical);
    c.add("normal2", [&] {
        trace.add("normal2");
        return std::this_thread::get_id() == caller;
    });
    c.add("high", [&] { trace.add("high"); }, at::TASK_HIGH);
    const auto r = c.execute();
    CHECK(trace.labels() == std::vector<std::string>{"critical", "high", "normal1", "normal2", "low"});
    CHECK(names_of(r) == trace.labels());
    CHECK(r.all_succeeded);
    CHECK(r.value<int>("normal1") == 1);
    CHECK(r.value<std::string>("critical") == "c");
    CHECK(r.value<bool>("normal2"));  // in the foreground
    CHECK_FALSE(r.find("low")->value.has_value());
    CHECK(r.find("missing") == nullptr);
    CHECK_THROWS_AS((void)r.value<int>("missing"), at::Error);
}

TEST_CASE("collections: a failure reaches on_error, the rest still run, all_succeeded is false") {
    std::vector<std::string> failed;
    at::FunctionCollection c({.on_error = [&](std::exception_ptr e, std::string_view name) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            failed.push_back(fmt::format("{}: {}", name, ex.what()));
        }
    }});
    c.add("ok", [] { return 1; });
    c.add("bad", []() -> int { throw std::runtime_error("no disk"); });
    c.add("after", [] { return 3; }, at::Priority::low);
    const auto r = c.execute();
    CHECK_FALSE(r.all_succeeded);
    CHECK(failed == std::vector<std::string>{"bad: no disk"});
    REQUIRE(r.results.size() == 3);
    CHECK(r.results[1].name == "bad");
    CHECK_FALSE(r.results[1].ok());
    CHECK_THROWS_WITH_AS((void)r.value<int>("bad"), "no disk", std::runtime_error);
    CHECK(r.value<int>("after") == 3);
    CHECK(c.run().size() == 3);  // atasker's run(): the results alone
}

TEST_CASE("collections: without on_error a failure is logged") {
    LogCapture log;
    at::FunctionCollection c;
    c.add("bad", [] { throw std::runtime_error("oops"); });
    CHECK_FALSE(c.execute().all_succeeded);
    bool logged = false;
    for (const auto& [level, line] : log.lines())
        logged |= level == at::LogLevel::error && line == "collection: function 'bad' failed: oops";
    CHECK(logged);
}

TEST_CASE("collections: a task collection logs each failure once: its own line, the task's at debug level" *
          doctest::timeout(30)) {
    LogCapture log(at::LogLevel::debug);
    at::TaskSupervisor sup;
    sup.start();
    at::TaskCollection c({.supervisor = &sup});
    c.add("bad", [] { throw std::runtime_error("oops"); });
    c.add("good", [] { return 1; });
    CHECK_FALSE(c.execute().all_succeeded);
    CHECK(sup.wait_idle(20s));  // the task's own line is logged as it settles
    CHECK(log.at(at::LogLevel::error) == std::vector<std::string>{"collection: function 'bad' failed: oops"});
    const auto debug = log.at(at::LogLevel::debug, "task ");
    REQUIRE(debug.size() == 1);
    CHECK(debug[0].ends_with("'bad' (thread) failed: oops"));
    sup.stop();
}

TEST_CASE("collections: remove by name, generated names, and taken names") {
    at::FunctionCollection c;
    const auto a = c.add([] { return 1; });
    const auto b = c.add([] { return 2; });
    CHECK(a != b);
    CHECK(c.size() == 2);
    CHECK(c.remove(a));
    CHECK_FALSE(c.remove(a));
    CHECK(names_of(c.execute()) == std::vector<std::string>{b});
    c.add("x", [] {});
    CHECK_THROWS_WITH_AS(c.add("x", [] {}),
                         "a function named 'x' is already in the collection; remove it first or pick another name",
                         at::Error);
}

TEST_CASE("collections: a task collection runs its functions as parallel tasks and returns all results" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.set_thread_pool({.pool_size = 4});
    sup.start();
    at::TaskCollection c({.supervisor = &sup});
    // Three functions that can only finish together: they run in parallel.
    std::latch all_running{3};
    std::vector<at::TaskId> ids;
    for (int i = 0; i < 3; ++i)
        c.add(fmt::format("f{}", i), [&all_running, i] {
            all_running.arrive_and_wait();
            return i * 10;
        });
    c.add("bad", []() -> int { throw std::logic_error("broken"); }, at::Priority::high);
    const auto r = c.execute();
    CHECK_FALSE(r.all_succeeded);
    CHECK(names_of(r) == std::vector<std::string>{"bad", "f0", "f1", "f2"});
    CHECK(r.value<int>("f2") == 20);
    CHECK_THROWS_WITH_AS((void)r.value<int>("bad"), "broken", std::logic_error);
    // They were tasks with their names and priorities.
    bool saw_bad = false;
    for (const auto& t : sup.get_tasks()) saw_bad |= t.name == "bad" && t.priority == at::Priority::high;
    CHECK(saw_bad);
    sup.stop();
}

TEST_CASE("collections: a task collection on a stopped supervisor throws") {
    at::TaskSupervisor sup;
    at::TaskCollection c({.supervisor = &sup});
    c.add([] {});
    CHECK_THROWS_AS(c.execute(), at::Error);
}

TEST_CASE("locker: a timeout calls the handler and throws TimeoutError" * doctest::timeout(30)) {
    std::vector<std::string> broken;
    at::Locker locker({.mod = "db", .timeout = 20ms, .on_timeout = [&](std::string_view what) {
                           broken.emplace_back(what);
                       }});
    Gate release;
    std::latch held{1};
    std::thread holder([&] {
        auto guard = locker.lock("holder");
        held.count_down();
        release.wait();
    });
    held.wait();
    CHECK_THROWS_WITH_AS((void)locker.lock("update"),
                         "locker 'db': could not lock for 'update' within 20ms; its holder is stuck or the timeout "
                         "is too short",
                         at::TimeoutError);
    CHECK_THROWS_AS(locker.run([] { return 1; }, "decorated"), at::TimeoutError);
    CHECK(broken == std::vector<std::string>{"update", "decorated"});
    release.open();
    holder.join();
    CHECK(locker.run([] { return 5; }) == 5);
}

TEST_CASE("locker: the default handler logs a critical message" * doctest::timeout(30)) {
    LogCapture log;
    at::Locker locker({.mod = "main", .timeout = 10ms, .relative = false});
    Gate release;
    std::latch held{1};
    std::thread holder([&] {
        auto guard = locker.lock();
        held.count_down();
        release.wait();
    });
    held.wait();
    CHECK_THROWS_AS((void)locker.lock("f"), at::TimeoutError);
    release.open();
    holder.join();
    bool logged = false;
    for (const auto& [level, line] : log.lines()) logged |= level == at::LogLevel::critical && line == "main/f locking broken";
    CHECK(logged);
}

TEST_CASE("locker: a relative locker is re-entrant and guards release on scope exit" * doctest::timeout(30)) {
    at::Locker locker({.timeout = 1s});
    {
        auto outer = locker.lock();
        CHECK(outer.owns_lock());
        CHECK(locker.run([&] { return locker.run([] { return 2; }); }) == 2);  // same thread, again
        outer.unlock();
        CHECK_FALSE(outer.owns_lock());
    }
    // Released: another thread takes it at once.
    std::thread other([&] { CHECK(locker.run([] { return true; })); });
    other.join();
}
