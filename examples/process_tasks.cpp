// Process tasks: functions registered under a name run in forked worker
// processes. Arguments and results cross through shared memory; a type of
// yours crosses once it says which members to carry (cereal's serialize, the
// codec's one customization point). A task that throws comes back as
// at::RemoteError; one that kills its worker fails alone, and the pool
// replaces the worker.
#include <atasker/atasker.hpp>

#include <cmath>
#include <cstdlib>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/core.h>

namespace at = atasker;
using namespace std::chrono_literals;

// A type of yours: list the members to carry. Members of standard types
// (string, vector, optional, map, ...) just work.
struct Order {
    std::string customer;
    std::vector<double> prices;
    std::optional<std::string> coupon;
    template <class Archive>
    void serialize(Archive& ar) {
        ar(customer, prices, coupon);
    }
};

// A type you cannot change: a free serialize() beside it, found by
// argument-dependent lookup.
namespace shop {
struct Invoice {
    std::string customer;
    long total_cents = 0;
    int lines = 0;
};
template <class Archive>
void serialize(Archive& ar, Invoice& invoice) {
    ar(invoice.customer, invoice.total_cents, invoice.lines);
}
}  // namespace shop

// Process tasks are registered at namespace scope, before main runs, so that
// every worker process knows them under the same name.
inline const at::MpTask bill{"bill", [](Order order) {
                                 double total = 0;
                                 for (double p : order.prices) total += p;
                                 if (order.coupon == "HALF") total /= 2;
                                 if (total < 0) throw std::invalid_argument("a bill cannot be negative");
                                 return shop::Invoice{order.customer, std::lround(total * 100),
                                                      static_cast<int>(order.prices.size())};
                             }};
inline const at::MpTask square{"square", [](int x) { return x * x; }};
// A leading at::Progress parameter is supplied by the worker: callers pass `n` only.
inline const at::MpTask count_up{"count_up", [](at::Progress progress, int n) {
                                     for (int i = 1; i <= n; ++i) progress.report(static_cast<double>(i) / n);
                                     return n;
                                 }};
inline const at::MpTask quit{"quit", [](int code) -> int { std::_Exit(code); }};
inline const at::MpTask hang{"hang", [] { ::pause(); }};  // waits for a signal that never comes

void expect(bool ok, const char* what) {
    if (!ok) throw std::logic_error(fmt::format("unexpected result: {}", what));
}

int main() try {
    at::init();  // first thing, before any thread exists: prepares the worker processes' parent

    auto& sup = at::task_supervisor;
    sup.set_mp_pool({.pool_size = 2});
    sup.start();

    // 1. A user type in, a user type out.
    const Order order{"Ada", {10.0, 20.5, 9.5}, "HALF"};
    const shop::Invoice invoice = at::background_task(bill, at::Priority::high)(order).get();
    expect(invoice.customer == "Ada" && invoice.total_cents == 2000 && invoice.lines == 3, "the invoice");
    fmt::print("{} owes {}.{:02} for {} lines\n", invoice.customer, invoice.total_cents / 100,
               invoice.total_cents % 100, invoice.lines);

    // 2. Process tasks have records like thread tasks, named after the MpTask.
    auto counted = at::background_task(count_up)(1000);
    expect(counted.get() == 1000, "count_up's result");
    const auto info = counted.info();
    expect(info && info->type == at::TaskType::mp && info->name == "count_up" && info->progress == 1.0,
           "the record of a process task");

    // 3. What the task throws comes back as RemoteError: its type and message.
    try {
        (void)at::background_task(bill)(Order{"Bob", {-5.0}, std::nullopt}).get();
        expect(false, "a negative bill fails");
    } catch (const at::RemoteError& e) {
        expect(e.type_name() == "std::invalid_argument", "the original exception's type");
        expect(std::string(e.what()) == "a bill cannot be negative", "the original message");
    }

    // 4. A task that ends its worker process fails alone; the next one runs
    // on a fresh worker.
    try {
        (void)at::background_task(quit)(3).get();
        expect(false, "a task whose worker exited fails");
    } catch (const at::RemoteError& e) {
        expect(e.type_name() == "exit", "the worker's end is named");
        fmt::print("quit: {}\n", e.what());  // worker process exited with code 3
    }
    expect(at::background_task(square)(12).get() == 144, "the pool goes on after a worker died");

    // 5. A run timeout kills the worker and fails the task with TimeoutError.
    try {
        at::background_task(hang, {.timeout = 50ms})().get();
        expect(false, "a task past its run timeout fails");
    } catch (const at::TimeoutError& e) {
        fmt::print("hang: {}\n", e.what());
    }

    // 6. A worker whose executor is a process task: each run puts square(7)
    // on the process pool and hands the result to the handler; returning
    // false from the handler stops the worker.
    std::promise<int> first;
    std::future<int> first_result = first.get_future();
    auto squarer = at::background_worker(square, {.name = "squarer", .interval = 10ms},
                                         [&first](int r) {
                                             first.set_value(r);
                                             return false;  // one run is enough
                                         },
                                         7);
    squarer.start();
    expect(first_result.get() == 49, "the process-task worker's result");
    squarer.stop();

    // 7. Many inputs at once: at::map sends them to the workers in chunks,
    // one request each, and returns the results in input order.
    std::vector<int> inputs(10000);
    for (int i = 0; i < 10000; ++i) inputs[static_cast<std::size_t>(i)] = i;
    const std::vector<int> squares = at::map(square, inputs);
    expect(squares.size() == 10000 && squares[9999] == 9999 * 9999, "map's results in input order");
    try {
        at::map(bill, std::vector<Order>{{"Cy", {1.0}, std::nullopt}, {"Di", {-1.0}, std::nullopt}});
        expect(false, "a map with a failing item throws");
    } catch (const at::MapError& e) {
        expect(e.index() == 1, "the failed item is named");
        fmt::print("map: {}\n", e.what());  // at::map: item 1 of 2 failed: std::invalid_argument: ...
    }

    sup.stop();  // ends and reaps every worker process
    fmt::print("process_tasks: ok\n");
    return 0;
} catch (const std::exception& e) {
    fmt::print(stderr, "process_tasks: {}\n", e.what());
    return 1;
}
