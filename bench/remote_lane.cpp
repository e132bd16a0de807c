// Scenario 11: the remote lane. A redis-server of the bench's own on
// 127.0.0.1 (persistence off), worker hosts (this runner started again with
// --remote-worker, serve_remote with 2 worker processes; one without
// prefetch, one with, each on a namespace of its own) and this process as
// the client: the round trip of one task at a time, and the throughput of
// many in flight. Beside them the floor: a bare
// XADD -> XREADGROUP -> XACK -> XADD reply -> XREAD loop between two
// connections of this process, one task at a time; and Celery and rq on the
// same server with 2 worker processes each (python_queue_peers.py). Skipped
// with a note where the remote lane is not built or redis-server is missing.
#include <csignal>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.hpp"
#include "mp_tasks.hpp"

#if ATASKER_BENCH_HAVE_REMOTE
#include <thread>

#include "../tests/child_process.hpp"
#include "../tests/redis_server.hpp"
#include "remote/redis_connection.hpp"
#endif

namespace atasker_bench {

/// Tasks a prefetching worker host holds beyond its 2 worker processes.
constexpr std::size_t bench_prefetch = 64;

#if ATASKER_BENCH_HAVE_REMOTE
namespace {

using atasker::detail::parse_redis_url;
using atasker::detail::RedisConnection;

/// A worker host: this runner in --remote-worker mode, stopped with SIGTERM.
class WorkerHost {
public:
    WorkerHost(const std::string& url, const std::string& ns, std::size_t prefetch)
        : pid_(test_support::spawn_child({"/proc/self/exe", "--remote-worker", url, ns, std::to_string(prefetch)})) {}
    WorkerHost(const WorkerHost&) = delete;
    WorkerHost& operator=(const WorkerHost&) = delete;
    ~WorkerHost() {
        ::kill(pid_, SIGTERM);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }

private:
    pid_t pid_;
};

/// A client supervisor whose remote pool is the namespace `ns`.
struct RemoteClient {
    RemoteClient(const std::string& url, const std::string& ns) {
        sup.start();
        sup.set_remote_pool({.url = url, .ns = ns});
        options.supervisor = &sup;
        options.type = atasker::TaskType::remote;
    }
    atasker::TaskSupervisor sup;
    atasker::TaskOptions options;
};

/// Round trips of one task at a time, in microseconds.
std::vector<double> ours_round_trips(RemoteClient& client, std::size_t n) {
    std::vector<double> us;
    us.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const int x = static_cast<int>(i % 1000);
        const auto t0 = Clock::now();
        if (atasker::background_task(bench_square, client.options)(x).get() != x * x)
            throw std::runtime_error("atasker-cpp remote: a wrong result");
        us.push_back(micros(t0, Clock::now()));
    }
    return us;
}

/// Tasks per second with `n` in flight at once.
double ours_throughput(RemoteClient& client, std::size_t n) {
    std::vector<atasker::Task<int>> tasks;
    tasks.reserve(n);
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < n; ++i)
        tasks.push_back(atasker::background_task(bench_square, client.options)(static_cast<int>(i % 1000)));
    for (std::size_t i = 0; i < n; ++i)
        if (tasks[i].get() != static_cast<int>(i % 1000) * static_cast<int>(i % 1000))
            throw std::runtime_error("atasker-cpp remote: a wrong result");
    return static_cast<double>(n) / seconds(t0, Clock::now());
}

/// The floor: one task at a time through a bare consumer-group loop.
std::vector<double> floor_round_trips(const std::string& url, std::size_t n) {
    RedisConnection client(parse_redis_url(url));
    (void)client.command({"DEL", "floor:q", "floor:reply"});
    (void)client.command({"XGROUP", "CREATE", "floor:q", "g", "$", "MKSTREAM"});
    std::thread worker([url] {
        RedisConnection c(parse_redis_url(url));
        for (;;) {
            const auto r = c.command({"XREADGROUP", "GROUP", "g", "w", "COUNT", "1", "BLOCK", "0", "STREAMS",
                                      "floor:q", ">"});
            const auto entry = r[0][1][0];
            const std::string id(entry[0].str());
            const std::string value(entry[1].field("v"));
            (void)c.command({"XACK", "floor:q", "g", id});
            (void)c.command({"XADD", "floor:reply", "*", "v", value});
            if (value == "stop") return;
        }
    });
    std::vector<double> us;
    us.reserve(n);
    std::string last = "0-0";
    try {
        for (std::size_t i = 0; i < n; ++i) {
            const std::string v = std::to_string(i);
            const auto t0 = Clock::now();
            (void)client.command({"XADD", "floor:q", "*", "v", v});
            const auto r = client.command({"XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "floor:reply", last});
            last = std::string(r[0][1][0][0].str());
            us.push_back(micros(t0, Clock::now()));
        }
    } catch (...) {
        (void)client.command({"XADD", "floor:q", "*", "v", "stop"});
        worker.join();
        throw;
    }
    (void)client.command({"XADD", "floor:q", "*", "v", "stop"});
    worker.join();
    return us;
}

}  // namespace
#endif

int remote_worker_main(const std::vector<std::string>& args) {
#if ATASKER_BENCH_HAVE_REMOTE
    if (args.size() != 3) return 2;
    return atasker::serve_remote(
        {.url = args[0], .ns = args[1], .pool_size = 2, .prefetch = std::stoul(args[2])});
#else
    (void)args;
    return 2;
#endif
}

void run_remote_lane(const Config& cfg, Report& report) {
    const std::size_t samples = std::clamp<std::size_t>(cfg.process_samples(), 50, 1'000);
    const std::size_t in_flight = std::clamp<std::size_t>(cfg.process_tasks(), 500, 10'000);
    Section& s = report.section("remote", fmt::format("11. Remote lane on Redis Streams: {} round trips and {} tasks "
                                                      "in flight per round, 1 worker host with 2 worker processes",
                                                      samples, in_flight));
    s.note(fmt::format("'prefetch {}': a worker host that holds up to {} tasks beyond its 2 worker processes "
                       "(ServeRemoteOptions::prefetch), on a namespace of its own; the other rows: no prefetch",
                       bench_prefetch, bench_prefetch));
    s.note("a redis-server of the bench's own on 127.0.0.1, persistence off; client, server and worker host on this "
           "machine");
    s.note("floor: a bare XADD -> XREADGROUP -> XACK -> XADD reply -> XREAD loop, one task at a time, between two "
           "connections of this process");
    const std::string rt = "round trip, one at a time";
    const std::string tp = fmt::format("{} tasks in flight", in_flight);
#if ATASKER_BENCH_HAVE_REMOTE
    std::unique_ptr<test_support::RedisServer> server;
    try {
        server = std::make_unique<test_support::RedisServer>();
    } catch (const std::exception& e) {
        s.pending(rt, "atasker-cpp background_task(MpTask, remote)", "skipped: redis-server did not start");
        s.note(fmt::format("redis-server: {}", e.what()));
        report.print_section(s);
        return;
    }
    const std::string url = server->url();
    const WorkerHost host(url, "atasker_bench", 0);
    const WorkerHost prefetching_host(url, "atasker_bench_prefetch", bench_prefetch);
    RemoteClient client(url, "atasker_bench");
    RemoteClient prefetching_client(url, "atasker_bench_prefetch");
    (void)ours_round_trips(client, 20);  // the worker hosts registered and serving
    (void)ours_round_trips(prefetching_client, 20);
    const std::string ours = "atasker-cpp background_task(MpTask, remote)";
    const std::string ours_prefetching = fmt::format("{}, prefetch {}", ours, bench_prefetch);
    const std::string floor = "bare stream loop (floor)";
    RowSet rows;
    std::vector<Measure> measures;
    measures.push_back([&](RowSet& r) {
        const auto us = ours_round_trips(client, samples);
        r.at(rt, ours, "p50", "us", Better::lower, true).samples.push_back(percentile(us, 50));
        r.at(rt, ours, "p99", "us", Better::lower, true).samples.push_back(percentile(us, 99));
    });
    measures.push_back([&](RowSet& r) {
        const auto us = floor_round_trips(url, samples);
        r.at(rt, floor, "p50", "us", Better::lower, false).samples.push_back(percentile(us, 50));
        r.at(rt, floor, "p99", "us", Better::lower, false).samples.push_back(percentile(us, 99));
    });
    measures.push_back([&](RowSet& r) {
        r.at(tp, ours, "tasks/s", "tasks/s", Better::higher, true).samples.push_back(ours_throughput(client, in_flight));
    });
    measures.push_back([&](RowSet& r) {
        r.at(tp, ours_prefetching, "tasks/s", "tasks/s", Better::higher, true)
            .samples.push_back(ours_throughput(prefetching_client, in_flight));
    });
    run_rounds(cfg.slow_rounds(), measures, rows);
    rows.move_to(s);
    // The same work on the same server, each peer with 2 worker processes.
    add_python_peers(s,
                     {"--url", url, "--samples", std::to_string(samples), "--tasks", std::to_string(in_flight),
                      "--rounds", std::to_string(cfg.slow_rounds())},
                     "python_queue_peers.py");
#else
    s.pending(rt, "atasker-cpp background_task(MpTask, remote)", "skipped: the remote lane is not built (-Dremote)");
    (void)cfg;
    (void)tp;
#endif
    report.print_section(s);
}

}  // namespace atasker_bench
