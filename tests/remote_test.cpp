// The remote lane end to end: a redis-server of the test's own
// (tests/redis_server.hpp), workers that are this very binary started with
// `--worker <url> <ns> <pool_size>` as real child processes running
// at::serve_remote(), and this process as the client.
//
// A task that must wait for the test (gate) blocks in its worker process on
// a Redis list (BLPOP) and says it started by pushing to another: the test
// waits on those, never on time.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <memory>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atasker/atasker.hpp>

#include "crash_task.hpp"
#include "error_text.hpp"
#include "redis_server.hpp"
#include "remote/redis_connection.hpp"

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
    WorkerProcess(const std::string& url, const std::string& ns, int pool_size) {
        std::array<int, 2> err{};
        if (::pipe2(err.data(), O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        const std::string pool = std::to_string(pool_size);
        std::vector<std::string> args = {"/proc/self/exe", "--worker", url, ns, pool};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const pid_t parent = ::getpid();
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(126);
            ::dup2(err[1], STDERR_FILENO);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
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
    /// Waits for it to exit; its exit code, or 128 + the signal that ended it.
    int wait() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    /// Everything it wrote to standard error (once it exited).
    std::string stderr_text() const {
        std::string out;
        std::array<char, 4096> buffer{};
        for (;;) {
            const ssize_t n = ::read(err_, buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return out;
            out.append(buffer.data(), static_cast<std::size_t>(n));
        }
    }

private:
    pid_t pid_ = -1;
    int err_ = -1;
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

TEST_CASE("remote: 1,000 tasks through 2 worker processes all come back right" * doctest::timeout(120)) {
    RedisServer server;
    WorkerProcess a(server.url(), "many", 2);
    WorkerProcess b(server.url(), "many", 2);
    Client client(server, "many");
    std::vector<at::Task<int>> tasks;
    for (int i = 0; i < 1000; ++i) tasks.push_back(at::background_task(square, client.remote())(i));
    for (int i = 0; i < 1000; ++i) CHECK(tasks[static_cast<std::size_t>(i)].get() == i * i);
    const auto info = client.sup.get_task_info(tasks.back().id());
    REQUIRE(info);
    CHECK(info->type == at::TaskType::remote);
    CHECK(info->status == at::TaskStatus::completed);
    CHECK(info->name == "square");
    a.terminate();
    b.terminate();
    CHECK(a.wait() == 0);
    CHECK(b.wait() == 0);
}

TEST_CASE("remote: critical tasks run before low ones while the workers are saturated" * doctest::timeout(120)) {
    RedisServer server;
    const std::string url = server.url();
    WorkerProcess worker(url, "prio", 1);
    Client client(server, "prio");
    RedisConnection c(parse_redis_url(url));

    auto held = at::background_task(gate, client.remote())(url, std::string("started"), std::string("gate"));
    (void)c.command({"BLPOP", "started", "0"});  // the worker's one process is busy
    std::vector<at::Task<std::string>> tasks;
    for (int i = 0; i < 5; ++i)
        tasks.push_back(at::background_task(record, client.remote(at::Priority::low))(url, std::string("order"),
                                                                                      fmt::format("low{}", i)));
    for (int i = 0; i < 5; ++i)
        tasks.push_back(at::background_task(record, client.remote(at::Priority::critical))(
            url, std::string("order"), fmt::format("critical{}", i)));
    wait_entries(c, "at:{prio}:q:low", 5);
    wait_entries(c, "at:{prio}:q:critical", 5);
    (void)c.command({"RPUSH", "gate", "open"});
    CHECK(held.get() == 1);
    for (auto& t : tasks) (void)t.get();
    const auto order = c.command({"LRANGE", "order", "0", "-1"});
    REQUIRE(order.size() == 10);
    for (std::size_t i = 0; i < 5; ++i) CHECK(order[i].str() == fmt::format("critical{}", i));
    for (std::size_t i = 0; i < 5; ++i) CHECK(order[i + 5].str() == fmt::format("low{}", i));
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
    (void)c.command({"SADD", "at:{registry}:registry", "resize_image"});
    WorkerProcess second(server.url(), "registry", 1);
    CHECK(second.wait() == 2);
    CHECK(second.stderr_text() ==
          fmt::format("this worker's MpTasks differ from those of namespace 'registry' at 127.0.0.1:{} (not in this "
                      "worker: resize_image); build workers and clients from the same MpTask definitions, or, with "
                      "every worker of the namespace stopped, delete the key at:{{registry}}:registry to start it "
                      "afresh\n",
                      server.port()));
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
    at::init({.max_workers = 8});
    if (argc == 5 && std::string_view(argv[1]) == "--worker") {
        try {
            return at::serve_remote({.url = argv[2], .ns = argv[3], .pool_size = std::stoul(argv[4])});
        } catch (const at::Error& e) {
            std::fprintf(stderr, "%s\n", e.what());
            return 2;
        }
    }
    doctest::Context context(argc, argv);
    return context.run();
}
