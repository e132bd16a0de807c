// The remote pool: the same MpTasks run on other hosts, carried by Redis
// Streams. One binary plays both parts, as it would across hosts:
//
//   redis-server --port 6379 --save '' --appendonly no      (one host)
//   remote worker redis://10.0.0.5:6379                      (each worker host; until SIGTERM)
//   remote client redis://10.0.0.5:6379                      (any host: puts tasks, checks results)
//
// Workers and clients must be built from the same MpTask definitions: a
// worker refuses to serve a namespace whose tasks differ from its own.
#include <atasker/atasker.hpp>

#include <cstdlib>
#include <future>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

namespace at = atasker;
using namespace std::chrono_literals;

// Registered at namespace scope, in workers and clients alike.
inline const at::MpTask count_words{"count_words", [](std::string text) {
                                        int words = 0;
                                        bool in_word = false;
                                        for (char c : text) {
                                            const bool space = c == ' ' || c == '\n' || c == '\t';
                                            if (!space && !in_word) ++words;
                                            in_word = !space;
                                        }
                                        return words;
                                    }};
inline const at::MpTask check_stock{"check_stock", [](std::string item, int wanted) {
                                        if (item.empty()) throw std::invalid_argument("no item named");
                                        return wanted <= 10;
                                    }};

void expect(bool ok, const char* what) {
    if (!ok) throw std::logic_error(fmt::format("unexpected result: {}", what));
}

// A worker host: runs what clients put, in a local pool of 2 worker
// processes, until SIGTERM or SIGINT; then finishes what it holds.
int worker(const std::string& url) {
    return at::serve_remote({.url = url, .ns = "example", .pool_size = 2, .prefetch = 8});
}

// A client: puts remote tasks and gets their results like any task's.
int client(const std::string& url) {
    auto& sup = at::task_supervisor;
    sup.start();
    sup.set_remote_pool({.url = url, .ns = "example"});
    const at::TaskOptions remote{.type = at::TaskType::remote};

    // 1. One task, and its record: where it ran.
    auto one = at::background_task(count_words, remote)(std::string("the quick brown fox"));
    expect(one.get() == 4, "count_words");
    const auto info = one.info();
    expect(info && info->status == at::TaskStatus::completed && !info->worker.empty(), "the record");
    fmt::print("count_words ran on worker {}\n", info->worker);

    // 2. Many at once, of mixed priority: the workers fetch the most urgent first.
    std::vector<at::Task<int>> tasks;
    for (int i = 0; i < 200; ++i) {
        at::TaskOptions o = remote;
        o.priority = i % 10 == 0 ? at::Priority::high : at::Priority::normal;
        tasks.push_back(at::background_task(count_words, o)(std::string(static_cast<std::size_t>(i % 7), 'w') + " x"));
    }
    std::set<std::string> workers;
    for (int i = 0; i < 200; ++i) {
        expect(tasks[static_cast<std::size_t>(i)].get() == (i % 7 == 0 ? 1 : 2), "a count");
        workers.insert(tasks[static_cast<std::size_t>(i)].info()->worker);
    }
    fmt::print("200 tasks ran on {} worker host(s)\n", workers.size());

    // 3. What a task throws on its worker comes back as at::RemoteError.
    try {
        (void)at::background_task(check_stock, remote)(std::string(), 1).get();
        expect(false, "an empty item fails");
    } catch (const at::RemoteError& e) {
        expect(e.type_name() == "std::invalid_argument", "the exception's type");
        fmt::print("check_stock failed on its worker: {}: {}\n", e.type_name(), e.what());
    }

    // 4. A completion callback, run once the result is back.
    std::promise<bool> in_stock;
    std::future<bool> answer = in_stock.get_future();
    at::background_task(check_stock, remote).callback([&in_stock](const at::Task<bool>& done) {
        in_stock.set_value(done.get());  // the outcome is stored: get() returns at once
    })(std::string("apples"), 3);
    expect(answer.get(), "the callback sees the result");

    sup.stop();
    return EXIT_SUCCESS;
}

int main(int argc, char** argv) try {
    at::init();  // first thing: a worker's local process pool forks from here
    const std::string_view role = argc == 3 ? argv[1] : "";
    if (role == "worker") return worker(argv[2]);
    if (role == "client") return client(argv[2]);
    fmt::print(stderr, "usage: {} worker|client redis://host:port\n", argv[0]);
    return 2;
} catch (const std::exception& e) {
    fmt::print(stderr, "remote: {}\n", e.what());
    return EXIT_FAILURE;
}
