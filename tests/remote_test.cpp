// The remote lane end to end: a redis-server of the test's own
// (tests/redis_server.hpp), workers that are this very binary started with
// `--worker <url> <ns> <pool_size> <lease ms> <max_deliveries> <prefetch>` as
// real child processes running
// at::serve_remote(), and this process as the client.
//
// A task that must wait for the test (gate) blocks in its worker process on
// a Redis list (BLPOP) and says it started by pushing to another: the test
// waits on those, never on time.

#include <doctest/doctest.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <future>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <boost/fiber/all.hpp>

#include <atasker/atasker.hpp>
#include <atasker/fiber.hpp>

#include "child_process.hpp"
#include "crash_task.hpp"
#include "error_text.hpp"
#include "redis_server.hpp"
#include "test_support.hpp"
#include "remote/redis_connection.hpp"
#include "remote/remote_keys.hpp"

namespace at = atasker;
using test_support::error_of;
using namespace std::chrono_literals;
using at::detail::parse_redis_url;
using at::detail::RedisConnection;
using test_support::RedisServer;

namespace {

int square_fn(int x) { return x * x; }
inline const at::MpTask square{"square", &square_fn};

std::string fail_fn(std::string message) { throw std::invalid_argument(message); }
inline const at::MpTask fail{"fail", &fail_fn};

/// Pushes "started" to `started`, then waits for an element on `gate`.
int gate_fn(std::string url, std::string started, std::string gate) {
    RedisConnection c(parse_redis_url(url));
    (void)c.command({"RPUSH", started, "started"});
    (void)c.command({"BLPOP", gate, "0"});
    return 1;
}
inline const at::MpTask gate{"gate", &gate_fn};

/// The pid of the process that runs main(): in a worker, the serve_remote
/// host whose worker processes (forked from its zygote) inherit it.
pid_t host_pid = 0;

/// Pushes its host's pid to `started`, waits for an element on `gate`,
/// pushes the pid to `finished`; returns the pid.
int held_fn(std::string url, std::string started, std::string gate, std::string finished) {
    RedisConnection c(parse_redis_url(url));
    const std::string pid = std::to_string(host_pid);
    (void)c.command({"RPUSH", started, pid});
    (void)c.command({"BLPOP", gate, "0"});
    (void)c.command({"RPUSH", finished, pid});
    return host_pid;
}
inline const at::MpTask held{"held", &held_fn};

/// Reports half its work done, pushes "started" to `started`, waits for an
/// element on `gate`; returns its host's pid.
int halfway_fn(at::Progress progress, std::string url, std::string started, std::string gate) {
    progress.report(0.5);
    RedisConnection c(parse_redis_url(url));
    (void)c.command({"RPUSH", started, "started"});
    (void)c.command({"BLPOP", gate, "0"});
    return host_pid;
}
inline const at::MpTask halfway{"halfway", &halfway_fn};

/// Kills the worker host that runs it, as a task that exhausts its memory would.
int poison_fn() {
    ::kill(host_pid, SIGKILL);
    return 0;
}
inline const at::MpTask poison{"poison", &poison_fn};

/// Appends `tag` to the list `order`: the order tasks ran in.
std::string record_fn(std::string url, std::string order, std::string tag) {
    RedisConnection c(parse_redis_url(url));
    (void)c.command({"RPUSH", order, tag});
    return tag;
}
inline const at::MpTask record{"record", &record_fn};

/// A worker: this binary in worker mode, as a child process whose standard
/// error the test reads once it ended.
class WorkerProcess {
public:
    WorkerProcess(const std::string& url, const std::string& ns, int pool_size,
                  std::chrono::milliseconds lease = at::ServeRemoteOptions{}.lease,
                  unsigned max_deliveries = at::ServeRemoteOptions{}.max_deliveries, std::size_t prefetch = 0) {
        std::array<int, 2> err{};
        if (::pipe2(err.data(), O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        pid_ = test_support::spawn_child({"/proc/self/exe", "--worker", url, ns, std::to_string(pool_size),
                                          std::to_string(lease.count()), std::to_string(max_deliveries),
                                          std::to_string(prefetch)},
                                         -1, err[1]);
        ::close(err[1]);
        err_ = err[0];
    }
    WorkerProcess(const WorkerProcess&) = delete;
    WorkerProcess& operator=(const WorkerProcess&) = delete;
    ~WorkerProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            (void)wait();
        }
        if (err_ >= 0) ::close(err_);
    }

    /// Asks it to stop (SIGTERM): it finishes what it holds, then exits.
    void terminate() const { ::kill(pid_, SIGTERM); }
    void signal(int sig) const { ::kill(pid_, sig); }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    /// Waits for it to exit; its exit code, or 128 + the signal that ended it.
    int wait() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    /// Everything it wrote to standard error (once it exited).
    std::string stderr_text() {
        while (read_some()) {
        }
        return written_;
    }
    /// Waits until it wrote `text` to standard error (its log, at info level).
    void wait_for_log(std::string_view text) {
        while (written_.find(text) == std::string::npos)
            if (!read_some()) throw std::runtime_error(fmt::format("the worker exited without logging '{}'", text));
    }

private:
    /// Reads what it wrote next to standard error; false at its end.
    bool read_some() {
        std::array<char, 4096> buffer{};
        for (;;) {
            const ssize_t n = ::read(err_, buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            written_.append(buffer.data(), static_cast<std::size_t>(n));
            return true;
        }
    }

    pid_t pid_ = -1;
    int err_ = -1;
    std::string written_;  // what it wrote to standard error so far
};

/// Waits until `key` (a stream) received `n` entries since it was made:
/// each XREAD blocks until more arrive.
void wait_entries(RedisConnection& c, const std::string& key, std::size_t n) {
    std::string last = "0";
    for (std::size_t seen = 0; seen < n;) {
        const auto r = c.command({"XREAD", "COUNT", "1000", "BLOCK", "0", "STREAMS", key, last});
        const auto entries = r[0][1];
        seen += entries.size();
        last = std::string(entries[entries.size() - 1][0].str());
    }
}

/// A started supervisor whose remote pool is the server's namespace `ns`.
struct Client {
    Client(const RedisServer& server, const std::string& ns) {
        sup.start();
        sup.set_remote_pool({.url = server.url(), .ns = ns});
    }
    at::TaskOptions remote(at::Priority p = at::Priority::normal) {
        at::TaskOptions o;
        o.supervisor = &sup;
        o.priority = p;
        o.type = at::TaskType::remote;
        return o;
    }
    at::TaskSupervisor sup;
};


}  // namespace

TEST_CASE("remote: 10,000 tasks of mixed priority through 3 worker processes all come back right" *
          doctest::timeout(300)) {
    RedisServer server;
    WorkerProcess a(server.url(), "many", 1);
    WorkerProcess b(server.url(), "many", 1);
    WorkerProcess c(server.url(), "many", 1);
    Client client(server, "many");
    constexpr std::array priorities{at::Priority::low, at::Priority::normal, at::Priority::high,
                                    at::Priority::critical};
    std::vector<at::Task<int>> tasks;
    for (int i = 0; i < 10000; ++i)
        tasks.push_back(at::background_task(square, client.remote(priorities[static_cast<std::size_t>(i) % 4]))(i));
    for (int i = 0; i < 10000; ++i) CHECK(tasks[static_cast<std::size_t>(i)].get() == i * i);
    const auto info = client.sup.get_task_info(tasks.back().id());
    REQUIRE(info);
    CHECK(info->type == at::TaskType::remote);
    CHECK(info->status == at::TaskStatus::completed);
    CHECK(info->name == "square");
    for (WorkerProcess* w : {&a, &b, &c}) w->terminate();
    for (WorkerProcess* w : {&a, &b, &c}) CHECK(w->wait() == 0);
}

TEST_CASE("remote: critical tasks run before high, high before normal, normal before low while the workers are "
          "saturated" *
          doctest::timeout(120)) {
    RedisServer server;
    const std::string url = server.url();
    WorkerProcess worker(url, "prio", 1);
    Client client(server, "prio");
    RedisConnection c(parse_redis_url(url));

    auto held = at::background_task(gate, client.remote())(url, std::string("started"), std::string("gate"));
    (void)c.command({"BLPOP", "started", "0"});  // the worker's one process is busy
    // Put least urgent first: the order they run in is the priorities'.
    constexpr std::array priorities{at::Priority::low, at::Priority::normal, at::Priority::high,
                                    at::Priority::critical};
    std::vector<at::Task<std::string>> tasks;
    for (const at::Priority p : priorities)
        for (int i = 0; i < 5; ++i)
            tasks.push_back(at::background_task(record, client.remote(p))(url, std::string("order"),
                                                                         fmt::format("{}{}", at::to_string(p), i)));
    for (const at::Priority p : priorities) wait_entries(c, fmt::format("at:{{prio}}:q:{}", at::to_string(p)), 5);
    (void)c.command({"RPUSH", "gate", "open"});
    CHECK(held.get() == 1);
    for (auto& t : tasks) (void)t.get();
    const auto order = c.command({"LRANGE", "order", "0", "-1"});
    REQUIRE(order.size() == 20);
    for (std::size_t k = 0; k < 4; ++k)
        for (std::size_t i = 0; i < 5; ++i)
            CHECK(order[k * 5 + i].str() == fmt::format("{}{}", at::to_string(priorities[3 - k]), i));
    worker.terminate();
    CHECK(worker.wait() == 0);
}

/// A coroutine that awaits `task` and stores its result in `out`.
test_support::Eager await_square(at::Task<int> task, std::promise<int>& out) {
    try {
        out.set_value(co_await task);
    } catch (...) {
        out.set_exception(std::current_exception());
    }
}

TEST_CASE("remote: a remote task's result comes through a callback, co_await and co_mp_apply from fibers" *
          doctest::timeout(60)) {
    RedisServer server;
    WorkerProcess worker(server.url(), "await", 2);
    Client client(server, "await");

    std::promise<int> called;
    auto with_callback = at::background_task(square, client.remote())
                             .callback([&called](const at::Task<int>& t) { called.set_value(t.get()); })(5);
    CHECK(called.get_future().get() == 25);

    std::promise<int> awaited;
    await_square(at::background_task(square, client.remote())(6), awaited);
    CHECK(awaited.get_future().get() == 36);

#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer cannot follow Boost.Context's stack switches (see .ci/run).
    MESSAGE("fibers skipped under ThreadSanitizer");
#else
    // 100 fibers on this thread, each awaiting its own remote call.
    std::vector<int> results(100);
    std::vector<boost::fibers::fiber> fibers;
    for (int i = 0; i < 100; ++i)
        fibers.emplace_back([&client, &results, i] {
            results[static_cast<std::size_t>(i)] = at::co_mp_apply(square, client.remote(), i).get();
        });
    for (auto& f : fibers) f.join();
    for (int i = 0; i < 100; ++i) CHECK(results[static_cast<std::size_t>(i)] == i * i);
#endif
    worker.terminate();
    CHECK(worker.wait() == 0);
}

TEST_CASE("remote: a task that throws fails with a RemoteError carrying its type and message" *
          doctest::timeout(60)) {
    RedisServer server;
    WorkerProcess worker(server.url(), "errors", 1);
    Client client(server, "errors");
    auto t = at::background_task(fail, client.remote())(std::string("no such user"));
    try {
        (void)t.get();
        FAIL("get() did not throw");
    } catch (const at::RemoteError& e) {
        CHECK(e.type_name() == "std::invalid_argument");
        CHECK(std::string(e.what()) == "no such user");
    }
    CHECK(t.info()->status == at::TaskStatus::failed);
    CHECK(t.info()->error == "std::invalid_argument: no such user");
    worker.terminate();
    CHECK(worker.wait() == 0);
}

TEST_CASE("remote: a task's hash in Redis is kept as long as its client keeps records, and not where it keeps none" *
          doctest::timeout(60)) {
    RedisServer server;
    WorkerProcess worker(server.url(), "keep", 1);
    Client client(server, "keep");
    RedisConnection c(parse_redis_url(server.url()));
    client.sup.set_retention({.max_finished = 100, .max_age = std::chrono::seconds(90)});
    CHECK(at::background_task(square, client.remote())(3).get() == 9);
    const auto keys = c.command({"KEYS", "at:{keep}:task:*"});
    REQUIRE(keys.size() == 1);
    const std::string key(keys[0].str());
    CHECK(c.command({"HGET", key, "status"}).str() == "completed");
    const long long ttl = c.command({"TTL", key}).integer();
    CHECK(ttl > 30);
    CHECK(ttl <= 90);
    (void)c.command({"DEL", key});
    client.sup.set_retention({.max_finished = 0});
    CHECK(at::background_task(square, client.remote())(4).get() == 16);
    CHECK(c.command({"KEYS", "at:{keep}:task:*"}).size() == 0);
    worker.terminate();
    CHECK(worker.wait() == 0);
}

TEST_CASE("remote: a task that crashes its worker process fails alone, as it would locally" * doctest::timeout(60)) {
    RedisServer server;
    WorkerProcess worker(server.url(), "crash", 1);
    Client client(server, "crash");
    for (const auto& [how, message] : test_support::crash_deaths) {
        CAPTURE(how);
        auto doomed = at::background_task(test_support::crash, client.remote())(how);
        const std::string expected(message);
        CHECK_THROWS_WITH_AS((void)doomed.get(), expected.c_str(), at::RemoteError);
        // The same worker host serves the next task with a fresh process.
        CHECK(at::background_task(square, client.remote())(how + 2).get() == (how + 2) * (how + 2));
    }
    worker.terminate();
    CHECK(worker.wait() == 0);
}

TEST_CASE("remote: SIGTERM lets a worker finish the task it holds, then it exits 0" * doctest::timeout(60)) {
    RedisServer server;
    const std::string url = server.url();
    WorkerProcess worker(url, "term", 1);
    Client client(server, "term");
    RedisConnection c(parse_redis_url(url));
    auto held = at::background_task(gate, client.remote())(url, std::string("started"), std::string("gate"));
    (void)c.command({"BLPOP", "started", "0"});
    worker.terminate();
    (void)c.command({"RPUSH", "gate", "open"});
    CHECK(held.get() == 1);
    CHECK(worker.wait() == 0);
}

TEST_CASE("remote: a task canceled after it was sent ends as canceled, and stop does not wait for a worker" *
          doctest::timeout(60)) {
    RedisServer server;  // and no worker at all
    RedisConnection c(parse_redis_url(server.url()));
    auto client = std::make_unique<Client>(server, "cancel");
    auto sent = at::background_task(square, client->remote())(4);
    auto other = at::background_task(square, client->remote(at::Priority::low))(5);
    wait_entries(c, "at:{cancel}:q:normal", 1);
    wait_entries(c, "at:{cancel}:q:low", 1);  // both in flight: the check below counts the low one there
    CHECK(sent.cancel());
    CHECK_THROWS_AS((void)sent.get(), at::CanceledError);
    CHECK(sent.info()->status == at::TaskStatus::canceled);
    CHECK(fmt::format("{}", client->sup.get_info()).find("; remote: queued c/h/n/l 0/0/0/0, in flight c/h/n/l 0/0/0/1;") !=
          std::string::npos);
    // The destructor cancels what is still in flight instead of waiting for it.
    client.reset();
    CHECK_THROWS_AS((void)other.get(), at::CanceledError);
}

TEST_CASE("remote: a worker whose MpTasks differ from the namespace's refuses to start, naming the difference" *
          doctest::timeout(60)) {
    RedisServer server;
    {
        WorkerProcess first(server.url(), "registry", 1);  // stores the namespace's names
        Client client(server, "registry");
        CHECK(at::background_task(square, client.remote())(3).get() == 9);
        first.terminate();
        CHECK(first.wait() == 0);
    }
    RedisConnection c(parse_redis_url(server.url()));
    const auto refusal = [&](const std::string& differences) {
        WorkerProcess worker(server.url(), "registry", 1);
        CHECK(worker.wait() == 2);
        return worker.stderr_text() ==
               fmt::format("this worker's MpTasks differ from those of namespace 'registry' at 127.0.0.1:{} ({}); "
                           "build workers and clients from the same MpTask definitions, or, with every worker of the "
                           "namespace stopped, delete the key at:{{registry}}:tasks to start it afresh\n",
                           server.port(), differences);
    };
    (void)c.command({"HSET", "at:{registry}:tasks", "resize_image", "FSsSsE"});
    CHECK(refusal("not in this worker: resize_image"));
    (void)c.command({"HDEL", "at:{registry}:tasks", "resize_image", "gate"});
    (void)c.command({"HSET", "at:{registry}:tasks", "square", "FlRKSsE"});
    CHECK(refusal("only in this worker: gate; another signature: square is int (int) in this worker, long (std::string "
                  "const&) in the namespace"));
}

/// The hash of the only task the namespace `ns` has a record of.
std::map<std::string, std::string> only_task_record(RedisConnection& c, const std::string& ns) {
    const auto keys = c.command({"KEYS", fmt::format("at:{{{}}}:task:*", ns)});
    REQUIRE(keys.size() == 1);
    const auto fields = c.command({"HGETALL", keys[0].str()});
    std::map<std::string, std::string> out;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) out.emplace(fields[i].str(), fields[i + 1].str());
    return out;
}

/// Of two workers, the one whose pid is `pid`, and the other.
std::pair<WorkerProcess*, WorkerProcess*> split(WorkerProcess& a, WorkerProcess& b, std::string_view pid) {
    REQUIRE((pid == std::to_string(a.pid()) || pid == std::to_string(b.pid())));
    return pid == std::to_string(a.pid()) ? std::pair{&a, &b} : std::pair{&b, &a};
}

/// Two workers with a lease of 500 ms in namespace `ns`, and a `held` task
/// that one of them, the victim, runs, waiting at the gate.
struct HeldByOneOfTwo {
    explicit HeldByOneOfTwo(const std::string& ns)
        : ns(ns),
          url(server.url()),
          a(url, ns, 1, 500ms),
          b(url, ns, 1, 500ms),
          client(server, ns),
          c(parse_redis_url(url)),
          task(at::background_task(held, client.remote())(url, std::string("started"), std::string("gate"),
                                                          std::string("finished"))) {
        std::tie(victim, other) = split(a, b, next_start());
    }
    /// The pid of the worker host whose run of the task starts next.
    std::string next_start() { return std::string(c.command({"BLPOP", "started", "0"})[1].str()); }
    /// The task's one record says the other worker completed it, on the
    /// second delivery; then the other worker stops.
    void check_completed_by_other() {
        const auto record = only_task_record(c, ns);
        CHECK(record.at("status") == "completed");
        CHECK(record.at("deliveries") == "2");
        CHECK(record.at("worker").ends_with(fmt::format(":{}", other->pid())));
        const auto info = task.info();  // the client's record says the same
        REQUIRE(info);
        CHECK(info->attempts == 2);
        CHECK(info->worker == record.at("worker"));
        other->terminate();
        CHECK(other->wait() == 0);
    }

    RedisServer server;
    std::string ns;
    std::string url;
    WorkerProcess a;
    WorkerProcess b;
    Client client;
    RedisConnection c;
    at::Task<int> task;
    WorkerProcess* victim = nullptr;
    WorkerProcess* other = nullptr;
};

TEST_CASE("remote: a worker killed mid-task loses it to another after its lease, and it completes once there" *
          doctest::timeout(60)) {
    HeldByOneOfTwo h("killed");
    h.victim->signal(SIGKILL);
    CHECK(h.victim->wait() == 128 + SIGKILL);
    // The other worker takes it over once the dead one was silent for a lease.
    CHECK(h.next_start() == std::to_string(h.other->pid()));
    (void)h.c.command({"RPUSH", "gate", "open"});
    CHECK(h.task.get() == h.other->pid());
    CHECK(h.c.command({"LRANGE", "finished", "0", "-1"}).size() == 1);
    h.check_completed_by_other();
}

TEST_CASE("remote: a worker frozen past its lease loses its task; its late result is dropped, one outcome stays" *
          doctest::timeout(60)) {
    HeldByOneOfTwo h("frozen");
    h.victim->signal(SIGSTOP);  // its worker process runs on, waiting at the gate
    CHECK(h.next_start() == std::to_string(h.other->pid()));
    (void)h.c.command({"RPUSH", "gate", "open", "open"});  // both runs end
    CHECK(h.task.get() == h.other->pid());
    // Both runs finished before the frozen worker thaws: once it does, it
    // learns the task is another's and kills a run still going.
    std::multiset<std::string> finished;
    for (int i = 0; i < 2; ++i) finished.emplace(h.c.command({"BLPOP", "finished", "0"})[1].str());
    CHECK(finished == std::multiset<std::string>{std::to_string(h.victim->pid()), std::to_string(h.other->pid())});
    h.victim->signal(SIGCONT);
    h.victim->terminate();  // it answers what it holds before it exits: too late
    CHECK(h.victim->wait() == 0);
    CHECK(h.victim->stderr_text().find("is dropped: its entry is no longer this worker's") != std::string::npos);
    h.check_completed_by_other();
}

TEST_CASE("remote: a task that takes down every worker that takes it fails as poison after max_deliveries" *
          doctest::timeout(60)) {
    RedisServer server;
    const std::string url = server.url();
    Client client(server, "poison");
    auto t = at::background_task(poison, client.remote())();
    for (int i = 0; i < 2; ++i) {
        WorkerProcess w(url, "poison", 1, 300ms, 2);  // each replaces the one before, as a service manager would
        CHECK(w.wait() == 128 + SIGKILL);
    }
    WorkerProcess last(url, "poison", 1, 300ms, 2);
    CHECK_THROWS_WITH_AS((void)t.get(),
                         "the remote task 'poison' was taken by 2 workers and each went silent past its lease before "
                         "it ended (max_deliveries = 2): it fails as poison and is not run again; look for what kills "
                         "or freezes a worker that runs it",
                         at::Error);
    CHECK(t.info()->status == at::TaskStatus::failed);
    CHECK(at::background_task(square, client.remote())(6).get() == 36);  // the last worker serves on
    last.terminate();
    CHECK(last.wait() == 0);
}

TEST_CASE("remote: a task canceled while no worker runs is never run by a worker started later" *
          doctest::timeout(60)) {
    RedisServer server;
    const std::string url = server.url();
    RedisConnection c(parse_redis_url(url));
    Client client(server, "cancelq");
    auto doomed = at::background_task(record, client.remote())(url, std::string("order"), std::string("doomed"));
    wait_entries(c, "at:{cancelq}:q:normal", 1);
    CHECK(doomed.cancel());
    CHECK_THROWS_AS((void)doomed.get(), at::CanceledError);
    // The client sends what it put after the cancel once the cancel is stored.
    auto after = at::background_task(record, client.remote())(url, std::string("order"), std::string("after"));
    wait_entries(c, "at:{cancelq}:q:normal", 2);
    WorkerProcess worker(url, "cancelq", 1);
    CHECK(after.get() == "after");
    const auto order = c.command({"LRANGE", "order", "0", "-1"});
    REQUIRE(order.size() == 1);
    CHECK(order[0].str() == "after");
    CHECK(c.command({"XLEN", "at:{cancelq}:q:normal"}).integer() == 0);
    worker.terminate();
    CHECK(worker.wait() == 0);
}

TEST_CASE("remote: canceling a running task stops it on its worker, which serves on" * doctest::timeout(60)) {
    RedisServer server;
    const std::string url = server.url();
    WorkerProcess worker(url, "cancelr", 1, 400ms);
    Client client(server, "cancelr");
    RedisConnection c(parse_redis_url(url));
    auto t = at::background_task(held, client.remote())(url, std::string("started"), std::string("gate"),
                                                       std::string("finished"));
    (void)c.command({"BLPOP", "started", "0"});
    CHECK(t.cancel());
    CHECK_THROWS_AS((void)t.get(), at::CanceledError);
    // The worker's one process waits at a gate nobody opens: another task
    // runs there only once the canceled one was stopped.
    CHECK(at::background_task(square, client.remote())(5).get() == 25);
    CHECK(c.command({"LLEN", "finished"}).integer() == 0);
    const auto keys = c.command({"KEYS", "at:{cancelr}:task:*"});
    std::multiset<std::string> statuses;
    for (std::size_t i = 0; i < keys.size(); ++i)
        statuses.emplace(c.command({"HGET", keys[i].str(), "status"}).str());
    CHECK(statuses == std::multiset<std::string>{"canceled", "completed"});
    worker.terminate();
    CHECK(worker.wait() == 0);
}

/// Waits until `pred(info)` holds for the client's record of `task`: the
/// reader updates it from the worker's reports, with nothing to wait on.
template <class T, class Pred>
at::TaskInfo wait_for_info(const at::Task<T>& task, Pred pred) {
    for (;;) {
        if (const auto info = task.info(); info && pred(*info)) return *info;
        std::this_thread::yield();
    }
}

TEST_CASE("remote: the client's record shows the worker that runs a task, its attempts and the progress it reports" *
          doctest::timeout(60)) {
    RedisServer server;
    const std::string url = server.url();
    WorkerProcess worker(url, "records", 1, 400ms);
    Client client(server, "records");
    RedisConnection c(parse_redis_url(url));
    auto t = at::background_task(halfway, client.remote())(url, std::string("started"), std::string("gate"));
    (void)c.command({"BLPOP", "started", "0"});
    const std::string where = fmt::format("{}:{}", at::detail::this_host(), worker.pid());
    const auto running = wait_for_info(t, [](const at::TaskInfo& i) { return !i.worker.empty() && i.progress > 0; });
    CHECK(running.status == at::TaskStatus::started);
    CHECK(running.worker == where);
    CHECK(running.attempts == 1);
    CHECK(running.progress == doctest::Approx(0.5));
    CHECK(fmt::format("{}", running).find(fmt::format(", on {}", where)) != std::string::npos);
    (void)c.command({"RPUSH", "gate", "open"});
    CHECK(t.get() == worker.pid());
    const auto ended = t.info();
    REQUIRE(ended);
    CHECK(ended->status == at::TaskStatus::completed);
    CHECK(ended->worker == where);
    CHECK(ended->attempts == 1);
    CHECK(ended->progress == 1.0);
    // A short task's start is not reported apart: its completion says where it ran.
    const auto quick = at::background_task(square, client.remote())(3);
    CHECK(quick.get() == 9);
    CHECK(quick.info()->worker == where);
    worker.terminate();
    CHECK(worker.wait() == 0);
}

TEST_CASE("remote: a prefetching worker holds tasks beyond its processes, runs them most urgent first and obeys a "
          "cancel of one it holds" *
          doctest::timeout(60)) {
    RedisServer server;
    const std::string url = server.url();
    RedisConnection c(parse_redis_url(url));
    Client client(server, "prefetch");
    // All in the streams before the worker starts: its first fetch takes the
    // four at once (one process, a prefetch of 3), most urgent first.
    auto first = at::background_task(held, client.remote(at::Priority::critical))(
        url, std::string("started"), std::string("gate"), std::string("finished"));
    std::vector<at::Task<std::string>> queued;
    for (const at::Priority p : {at::Priority::low, at::Priority::normal, at::Priority::high})
        queued.push_back(at::background_task(record, client.remote(p))(url, std::string("order"),
                                                                      std::string(at::to_string(p))));
    for (const char* q : {"critical", "high", "normal", "low"})
        wait_entries(c, fmt::format("at:{{prefetch}}:q:{}", q), 1);
    WorkerProcess worker(url, "prefetch", 1, 1000ms, 3, 3);
    CHECK(c.command({"BLPOP", "started", "0"})[1].str() == std::to_string(worker.pid()));
    // The three others wait in the worker, not in the streams: a second
    // worker finds nothing to take.
    for (const char* q : {"high", "normal", "low"})
        CHECK(c.command({"XPENDING", fmt::format("at:{{prefetch}}:q:{}", q), "workers"})[0].integer() == 1);
    WorkerProcess idle(url, "prefetch", 1);
    // Canceled while the worker holds it: the worker ends it as canceled at
    // its next renewal, before it could run (its one process waits at the gate).
    CHECK(queued[1].cancel());
    worker.wait_for_log("canceled it: its run here is stopped");
    (void)c.command({"RPUSH", "gate", "open"});
    CHECK(first.get() == worker.pid());
    CHECK(queued[2].get() == "high");
    CHECK(queued[0].get() == "low");
    CHECK_THROWS_AS((void)queued[1].get(), at::CanceledError);
    const auto order = c.command({"LRANGE", "order", "0", "-1"});
    REQUIRE(order.size() == 2);
    CHECK(order[0].str() == "high");
    CHECK(order[1].str() == "low");
    const auto keys = c.command({"KEYS", "at:{prefetch}:task:*"});
    std::multiset<std::string> workers;
    std::multiset<std::string> statuses;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        statuses.emplace(c.command({"HGET", keys[i].str(), "status"}).str());
        workers.emplace(c.command({"HGET", keys[i].str(), "worker"}).str());
    }
    CHECK(statuses == std::multiset<std::string>{"canceled", "completed", "completed", "completed"});
    CHECK(workers.size() == 4);
    CHECK(workers.count(*workers.begin()) == 4);  // all on the prefetching worker
    CHECK(workers.begin()->ends_with(fmt::format(":{}", worker.pid())));
    for (WorkerProcess* w : {&worker, &idle}) w->terminate();
    for (WorkerProcess* w : {&worker, &idle}) CHECK(w->wait() == 0);
}

TEST_CASE("remote: Redis killed while tasks are in flight: every handle fails naming the server; once it is back, "
          "the client and the worker reconnect and serve on" *
          doctest::timeout(60)) {
    RedisServer server;
    const std::string url = server.url();
    const std::string where = fmt::format("redis at 127.0.0.1:{}", server.port());
    WorkerProcess worker(url, "gone", 1);
    Client client(server, "gone");
    auto running = [&] {
        RedisConnection c(parse_redis_url(url));
        auto t = at::background_task(held, client.remote())(url, std::string("started"), std::string("gate"),
                                                           std::string("finished"));
        (void)c.command({"BLPOP", "started", "0"});
        return t;
    }();
    std::vector<at::Task<int>> waiting;
    for (int i = 0; i < 3; ++i) waiting.push_back(at::background_task(square, client.remote())(i));
    {
        RedisConnection c(parse_redis_url(url));
        wait_entries(c, "at:{gone}:q:normal", 4);
    }
    server.stop();
    CHECK(error_of([&] { (void)running.get(); }).find(where) != std::string::npos);
    // Put while the server is away: it waits in the client's queue.
    auto later = at::background_task(square, client.remote())(9);
    server.restart();  // empty, as a server without persistence comes back
    CHECK(later.get() == 81);
    // A task whose send the server had confirmed failed with the server. One
    // whose confirmation was lost with it went back to the queue and was sent
    // again (at-least-once): it ran once the server was back.
    for (int i = 0; i < 3; ++i) {
        int value = -1;
        std::string failure;
        try {
            value = waiting[static_cast<std::size_t>(i)].get();
        } catch (const at::Error& e) {
            failure = e.what();
        }
        if (failure.empty()) {
            CHECK(value == i * i);
        } else {
            CHECK(failure.find(where) != std::string::npos);
        }
    }
    CHECK(later.info()->worker.ends_with(fmt::format(":{}", worker.pid())));
    worker.terminate();
    CHECK(worker.wait() == 0);
    const std::string log = worker.stderr_text();
    CHECK(log.find(fmt::format("lost its connection to {}", where)) != std::string::npos);
    CHECK(log.find(fmt::format("reconnected to {}", where)) != std::string::npos);
}

TEST_CASE("remote: a bad url, an unreachable server and a pool not set up give clear errors" * doctest::timeout(60)) {
    at::TaskSupervisor sup;
    sup.start();
    CHECK(error_of([&] { sup.set_remote_pool({.url = "localhost:6379", .ns = "x"}); }) ==
          "'localhost:6379' is not a redis url: it does not start with redis://; write redis://host:port or "
          "redis://host:port/db");
    CHECK(error_of([&] { sup.set_remote_pool({.url = "redis://127.0.0.1:6379", .ns = "my app"}); }) ==
          "'my app' is not a namespace for the remote pool; use letters, digits, '-', '_' and '.', e.g. \"myapp\"");
    const int port = test_support::free_port();
    const std::string nowhere = fmt::format("redis://127.0.0.1:{}", port);
    const std::string refused = fmt::format("cannot connect to redis at 127.0.0.1:{} ({}): Connection refused; start "
                                            "redis-server there, or correct the url",
                                            port, nowhere);
    CHECK(error_of([&] { sup.set_remote_pool({.url = nowhere, .ns = "x"}); }) == refused);
    CHECK(error_of([&] { (void)at::serve_remote({.url = nowhere, .ns = "x", .pool_size = 1}); }) == refused);
    CHECK(error_of([&] {
              (void)at::serve_remote({.url = nowhere, .ns = "x", .lease = std::chrono::milliseconds(50)});
          }) == "a remote worker's lease of 50 ms is too short to renew in time; give it at least 100 ms (30 s by "
                "default)");
    CHECK(error_of([&] { (void)at::serve_remote({.url = nowhere, .ns = "x", .max_deliveries = 0}); }) ==
          "max_deliveries 0 would fail every task before it ran; give it at least 1 (3 by default)");
    at::TaskOptions o;
    o.supervisor = &sup;
    o.type = at::TaskType::remote;
    CHECK(error_of([&] { (void)at::background_task(square, o)(2); }) ==
          "the remote pool is not set up; call set_remote_pool() before putting remote tasks");
    CHECK(error_of([&] { (void)at::background_task([] { return 1; }, o)(); }) ==
          "a function cannot leave its process to run as a remote task; wrap it in an at::MpTask, or leave the type "
          "empty to run it on a thread");
}

int main(int argc, char** argv) {
    host_pid = ::getpid();
    at::init({.max_workers = 8});
    if (argc == 8 && std::string_view(argv[1]) == "--worker") {
        at::set_log_level(at::LogLevel::info);  // the tests wait for what it logs
        try {
            return at::serve_remote({.url = argv[2],
                                     .ns = argv[3],
                                     .pool_size = std::stoul(argv[4]),
                                     .prefetch = std::stoul(argv[7]),
                                     .lease = std::chrono::milliseconds(std::stol(argv[5])),
                                     .max_deliveries = static_cast<unsigned>(std::stoul(argv[6]))});
        } catch (const at::Error& e) {
            std::fprintf(stderr, "%s\n", e.what());
            return 2;
        }
    }
    doctest::Context context(argc, argv);
    return context.run();
}
