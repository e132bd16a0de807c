// Collections: a pack of named functions run in priority order (critical
// first, then in the order they were added), returning every result and
// whether all succeeded. FunctionCollection runs them here, one after
// another; TaskCollection runs them as tasks, in parallel, and waits for all.
// And Locker, atasker's lock with a timeout.
#include <atasker/atasker.hpp>

#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

namespace at = atasker;
using namespace std::chrono_literals;

void expect(bool ok, const char* what) {
    if (!ok) throw std::logic_error(fmt::format("unexpected result: {}", what));
}

int main() try {
    // 1. In the foreground: no supervisor needed.
    std::vector<std::string> order;
    std::vector<std::string> failed;
    at::FunctionCollection startup({.on_error = [&failed](std::exception_ptr, std::string_view name) {
        failed.emplace_back(name);  // instead of an error line in the log
    }});
    startup.add("cache", [&order] { order.push_back("cache"); });
    startup.add("config", [&order] {
        order.push_back("config");
        return std::string("debug=1");
    }, at::Priority::critical);
    startup.add("metrics", [&order]() -> int {
        order.push_back("metrics");
        throw std::runtime_error("no metrics server");
    }, at::Priority::low);

    const at::CollectionResult started = startup.execute();
    expect(order == std::vector<std::string>{"config", "cache", "metrics"}, "critical first, low last");
    expect(!started.all_succeeded && failed == std::vector<std::string>{"metrics"}, "one function failed");
    expect(started.value<std::string>("config") == "debug=1", "a function's result, by name");
    expect(!started.find("metrics")->ok(), "the failed function's outcome");

    // 2. As tasks on the supervisor, in parallel; each one has a record.
    at::task_supervisor.start();
    at::TaskCollection checks;
    checks.add("db", [] { return true; }, at::Priority::high);
    checks.add("disk", [] { return 42; });
    const at::CollectionResult checked = checks.execute();  // waits for all
    expect(checked.all_succeeded, "every check passed");
    expect(checked.value<bool>("db") && checked.value<int>("disk") == 42, "the checks' results");
    expect(checked.results.front().name == "db", "results in priority order");

    // 3. Locker: a lock whose wait is bounded; past the timeout the lock is
    // reported broken (on_timeout, or a critical log line) and lock() throws.
    at::Locker db_lock({.mod = "db", .timeout = 100ms});
    {
        auto guard = db_lock.lock("update");  // unlocks when it goes out of scope
        // Another thread cannot take it while this guard holds it:
        auto contender = at::background_task([&db_lock] {
            try {
                auto other = db_lock.lock("report");
                return false;
            } catch (const at::TimeoutError&) {
                return true;
            }
        })();
        expect(contender.get(), "a second locker times out");
    }
    expect(db_lock.run([] { return 7; }, "count") == 7, "run() holds the lock around a call");

    at::task_supervisor.stop();
    fmt::print("collections: ok\n");
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "collections: {}\n", e.what());
    return 1;
}
