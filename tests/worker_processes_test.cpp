// The process pool's mechanics: real worker processes forked by the zygote,
// real crashes, kills, timeouts, progress, batches, and clean ends.
//
// Own main: at::init() must fork the zygote before anything starts a thread,
// and the scenarios run in child processes (the test binary re-executed with
// --scenario=...) start from main too.

#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <latch>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <atasker/atasker.hpp>

#include "process/shm_slots.hpp"
#include "process/worker_processes.hpp"
#include "process/zygote.hpp"
#include "value_segments.hpp"

namespace at = atasker;
using at::detail::ByteReader;
using at::detail::ByteWriter;
using at::detail::CallOutcome;
using at::detail::CallRequest;
using at::detail::WorkerProcesses;
using Kind = CallOutcome::Kind;

extern char** environ;

namespace {

// Made in main before at::init(), so every worker process inherits them: a
// task tells the test it has started by writing to `started`, and waits for
// the test's go-ahead by reading `release`.
int started_pipe[2] = {-1, -1};
int release_pipe[2] = {-1, -1};

void signal_started() {
    const char b = 's';
    if (::write(started_pipe[1], &b, 1) != 1) throw std::runtime_error("cannot write the started pipe");
}
void wait_started() {
    char b = 0;
    while (::read(started_pipe[0], &b, 1) != 1) REQUIRE(errno == EINTR);
}
void release() {
    const char b = 'r';
    REQUIRE(::write(release_pipe[1], &b, 1) == 1);
}
void wait_release() {
    char b = 0;
    while (::read(release_pipe[0], &b, 1) != 1)
        if (errno != EINTR) throw std::runtime_error("cannot read the release pipe");
}

const at::MpTask add_one{"pw.add_one", [](int x) { return x + 1; }};
const at::MpTask exclaim{"pw.exclaim", [](std::string s) { return s + "!"; }};
const at::MpTask fail{"pw.fail", [](std::string s) -> int { throw std::invalid_argument("bad " + s); }};
// The crash under test; UBSan would only report it before it happens.
__attribute__((no_sanitize("undefined"))) void write_through_null() {
    volatile int* p = nullptr;
    *p = 1;
}
const at::MpTask segv{"pw.segv", [](int) -> int {
                          // Default action even under ASan, which installs its own handler.
                          ::signal(SIGSEGV, SIG_DFL);
                          write_through_null();
                          return 0;
                      }};
const at::MpTask self_kill{"pw.self_kill", [](int) -> int {
                               ::kill(::getpid(), SIGKILL);
                               for (;;) ::pause();
                           }};
const at::MpTask aborts{"pw.abort", [](int) -> int { std::abort(); }};
const at::MpTask exits{"pw.exit", [](int code) -> int { std::exit(code); }};
const at::MpTask block{"pw.block", [](int) -> int {
                           signal_started();
                           for (;;) ::pause();
                       }};
const at::MpTask gated{"pw.gated", [](at::Progress p, int x) {
                           p.report(0.25);
                           signal_started();
                           wait_release();
                           return x * 2;
                       }};
const at::MpTask big{"pw.big", [](std::size_t n) { return std::string(n, 'x'); }};
// A result whose encoding stops once it writes into the segment made for it
// (the slot's try, which counts past the slot's end, then the segment): for
// a kill there.
struct StallsInSegment {
    std::string text;
    template <class Archive>
    void save(Archive& ar) const {
        static int passes = 0;
        if (++passes == 2) {
            signal_started();
            for (;;) ::pause();
        }
        ar(text);
    }
    template <class Archive>
    void load(Archive& ar) {
        ar(text);
    }
};
const at::MpTask stalls_in_segment{"pw.stalls_in_segment", [](std::size_t n) { return StallsInSegment{std::string(n, 'y')}; }};

// One task's request and result, for call().
template <class Task, class... Args>
CallOutcome call(WorkerProcesses& pool, std::size_t slot, const Task& task, auto& result, const Args&... args) {
    return pool.call(
        slot, task.index(), [&](ByteWriter& w) { task.encode_args(w, args...); },
        [&](ByteReader& r) { result = task.decode_result(r); });
}

std::size_t count_fds() {
    std::size_t n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    while (const dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n - 1;  // the DIR's own fd
}

// The pids listed in /proc/<pid>/task/*/children.
std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> out;
    const std::string dir = "/proc/" + std::to_string(pid) + "/task";
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return out;
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream in(dir + "/" + e->d_name + "/children");
        pid_t c = 0;
        while (in >> c) out.push_back(c);
    }
    ::closedir(d);
    return out;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Runs this test binary again with `args`, stdout into a pipe read back.
struct Child {
    pid_t pid;
    int out;
};
Child spawn_self(std::vector<std::string> args) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    std::vector<char*> argv;
    std::string self = "/proc/self/exe";
    argv.push_back(self.data());
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[1]);
    REQUIRE(rc == 0);
    return Child{pid, p[0]};
}
std::string read_line(int fd) {
    std::string s;
    char c = 0;
    while (::read(fd, &c, 1) == 1 && c != '\n') s += c;
    return s;
}
int wait_exit(pid_t pid) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0) REQUIRE(errno == EINTR);
    return st;
}

}  // namespace

TEST_CASE("shared slots: a mapping the system refuses is an at::SystemError that says what to lower") {
    // Slots of an exabyte each: more than any address space holds.
    const std::size_t exabyte = std::size_t{1} << 60;
    try {
        at::detail::SharedSlots refused(4, exabyte);
        FAIL("a mapping of four exabytes was granted");
    } catch (const at::SystemError& e) {
        CHECK(e.code() == std::errc::not_enough_memory);
        CHECK(std::string(e.what()).find("lower max_workers or slot_size") != std::string::npos);
    }
}

TEST_CASE("process workers: an int and a string make the round trip" * doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    CHECK(pool.running(0));
    CHECK(pool.pid(0) > 0);
    int n = 0;
    CallOutcome o = call(pool, 0, add_one, n, 41);
    CHECK(o.kind == Kind::ok);
    CHECK(o.started);
    CHECK(n == 42);
    std::string s;
    o = call(pool, 0, exclaim, s, std::string("hello"));
    CHECK(o.kind == Kind::ok);
    CHECK(s == "hello!");
    pool.stop();
    CHECK_FALSE(pool.running(0));
}

TEST_CASE("process workers: a task's exception comes back with its type and message" * doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    int n = 0;
    CallOutcome o = call(pool, 0, fail, n, std::string("input"));
    CHECK(o.kind == Kind::remote_error);
    CHECK(o.error_type == "std::invalid_argument");
    CHECK(o.error_message == "bad input");
    // The worker lives on.
    o = call(pool, 0, add_one, n, 1);
    CHECK(o.kind == Kind::ok);
    CHECK(n == 2);
}

TEST_CASE("process workers: a crashed worker names the cause and its replacement works" * doctest::timeout(30)) {
    std::promise<CallOutcome> seen;
    std::atomic<int> exits_seen{0};
    WorkerProcesses pool({.on_exit = [&](std::size_t slot, const CallOutcome& how) {
        CHECK(slot == 1);
        if (exits_seen.fetch_add(1) == 0) seen.set_value(how);
    }});
    pool.spawn(1);
    struct Crash {
        std::string name;
        std::function<CallOutcome(int&)> run;
        std::string type;
        std::string message;
        int value;
    };
    const std::vector<Crash> crashes = {
        {"SIGSEGV", [&](int& r) { return call(pool, 1, segv, r, 0); }, "signal",
         "worker process killed by signal 11 (SIGSEGV)", SIGSEGV},
        {"SIGKILL", [&](int& r) { return call(pool, 1, self_kill, r, 0); }, "signal",
         "worker process killed by signal 9 (SIGKILL)", SIGKILL},
        {"abort", [&](int& r) { return call(pool, 1, aborts, r, 0); }, "signal",
         "worker process killed by signal 6 (SIGABRT)", SIGABRT},
        {"exit(3)", [&](int& r) { return call(pool, 1, exits, r, 3); }, "exit", "worker process exited with code 3",
         3},
    };
    for (const Crash& c : crashes) {
        CAPTURE(c.name);
        int r = -1;
        const CallOutcome o = c.run(r);
        CHECK(o.kind == Kind::died);
        CHECK(o.started);
        CHECK(o.error_type == c.type);
        CHECK(o.error_message == c.message);
        CHECK(o.signal_or_exit == c.value);
        CHECK_FALSE(pool.running(1));
        CHECK(call(pool, 1, add_one, r, 1).kind == Kind::not_run);  // no worker: never reached
        pool.replace(1);
        const CallOutcome next = call(pool, 1, add_one, r, 10);
        CHECK(next.kind == Kind::ok);
        CHECK(r == 11);
    }
    const CallOutcome first = seen.get_future().get();
    CHECK(first.kind == Kind::died);
    CHECK(first.error_message == "worker process killed by signal 11 (SIGSEGV)");
    pool.stop();
    CHECK(exits_seen.load() == 5);  // four crashes and the stop
}

TEST_CASE("process workers: an idle worker's death is reported without a call" * doctest::timeout(30)) {
    std::promise<CallOutcome> seen;
    WorkerProcesses pool({.on_exit = [&](std::size_t, const CallOutcome& how) { seen.set_value(how); }});
    pool.spawn(2);
    REQUIRE(::kill(pool.pid(2), SIGTERM) == 0);
    const CallOutcome how = seen.get_future().get();
    CHECK(how.kind == Kind::died);
    CHECK(how.error_message == "worker process killed by signal 15 (SIGTERM)");
    CHECK_FALSE(pool.running(2));
}

TEST_CASE("process workers: a call on a slot whose worker just died is not run, not an error" *
          doctest::timeout(30)) {
    // The window a pool thread has between running() and its call: the
    // worker dies in it, and the call must say "never reached" so the task
    // is carried again, instead of failing it with an internal message.
    std::promise<void> died;
    WorkerProcesses pool({.on_exit = [&](std::size_t, const CallOutcome&) { died.set_value(); }});
    pool.spawn(1);
    REQUIRE(pool.running(1));
    REQUIRE(::kill(pool.pid(1), SIGKILL) == 0);
    died.get_future().get();
    REQUIRE_FALSE(pool.running(1));
    int n = 0;
    const CallOutcome o = call(pool, 1, add_one, n, 1);
    CHECK(o.kind == Kind::not_run);
    CHECK_FALSE(o.started);
    CHECK(n == 0);
    pool.replace(1);
    CHECK(call(pool, 1, add_one, n, 1).kind == Kind::ok);
    CHECK(n == 2);
    pool.stop();
}

TEST_CASE("process workers: a task past its deadline is killed and reported timed out" * doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    int r = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const CallOutcome o = pool.call(
        0, block.index(), [&](ByteWriter& w) { block.encode_args(w, 0); }, [&](ByteReader&) {},
        t0 + std::chrono::milliseconds(50));
    wait_started();  // the task did start (its byte is in the pipe)
    CHECK(o.kind == Kind::timed_out);
    CHECK(o.started);
    CHECK(o.signal_or_exit == SIGKILL);
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(50));
    CHECK_FALSE(pool.running(0));
    pool.replace(0);
    CHECK(call(pool, 0, add_one, r, 5).kind == Kind::ok);
    CHECK(r == 6);
}

TEST_CASE("process workers: kill() from another thread ends the running call" * doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(3);
    std::latch killed(1);
    std::thread killer([&] {
        wait_started();
        CHECK(pool.kill(3));
        killed.count_down();
    });
    int r = 0;
    const CallOutcome o = call(pool, 3, block, r, 0);
    killed.wait();
    killer.join();
    CHECK(o.kind == Kind::killed);
    CHECK(o.started);
    CHECK(o.signal_or_exit == SIGKILL);
    CHECK_FALSE(pool.kill(3));
    pool.replace(3);
    CHECK(call(pool, 3, add_one, r, 0).kind == Kind::ok);
    CHECK(r == 1);
}

TEST_CASE("process workers: progress reported in the worker is read by the parent" * doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    double seen = -1;
    std::thread watcher([&] {
        wait_started();
        seen = pool.progress(0);
        release();
    });
    int r = 0;
    const CallOutcome o = call(pool, 0, gated, r, 21);
    watcher.join();
    CHECK(o.kind == Kind::ok);
    CHECK(r == 42);
    CHECK(seen == 0.25);
    CHECK(pool.progress_record(0) == 0);
}

TEST_CASE("process workers: arguments and results larger than the slot cross through segments" *
          doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    const std::size_t cap = pool.slot_capacity();
    std::string s;
    CHECK(call(pool, 0, exclaim, s, std::string(cap + 1, 'a')).kind == Kind::ok);
    CHECK(s == std::string(cap + 1, 'a') + "!");
    CHECK(call(pool, 0, big, s, cap + 1).kind == Kind::ok);
    CHECK(s == std::string(cap + 1, 'x'));
    // The largest result that fits the slot stays in it.
    CHECK(call(pool, 0, big, s, cap - 64).kind == Kind::ok);
    CHECK(s.size() == cap - 64);
    CHECK(test_support::our_segments().empty());
    CHECK(test_support::shm_fds().empty());
}

TEST_CASE("process workers: a batch sends arguments too large for the slot first in a request of their own" *
          doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    const std::size_t cap = pool.slot_capacity();
    const std::string inputs[3] = {"a", std::string(2 * cap, 'b'), "c"};
    std::string outs[3];
    auto write = [&](std::size_t i) { return [&, i](ByteWriter& w) { exclaim.encode_args(w, inputs[i]); }; };
    auto read = [&](std::size_t i) { return [&, i](ByteReader& r) { outs[i] = exclaim.decode_result(r); }; };
    auto w0 = write(0), w1 = write(1), w2 = write(2);
    auto r0 = read(0), r1 = read(1), r2 = read(2);
    std::vector<CallRequest> batch{{exclaim.index(), w0, r0, 0, {}}, {exclaim.index(), w1, r1, 0, {}},
                                   {exclaim.index(), w2, r2, 0, {}}};
    pool.call_batch(0, batch);
    CHECK(batch[0].outcome.kind == Kind::ok);
    CHECK(batch[1].outcome.kind == Kind::not_run);  // did not fit behind the first
    CHECK(batch[2].outcome.kind == Kind::not_run);
    pool.call_batch(0, std::span(batch).subspan(1));
    CHECK(batch[1].outcome.kind == Kind::ok);
    CHECK(batch[2].outcome.kind == Kind::ok);
    CHECK(outs[0] == "a!");
    CHECK(outs[1] == inputs[1] + "!");
    CHECK(outs[2] == "c!");
    CHECK(test_support::our_segments().empty());
}

TEST_CASE("process workers: a result segment posted before its worker died is read, and none is left" *
          doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    const std::size_t cap = pool.slot_capacity();
    std::string s;
    int dead = 0;
    auto write_big = [&](ByteWriter& w) { big.encode_args(w, 3 * cap); };
    auto read_big = [&](ByteReader& r) { s = big.decode_result(r); };
    auto write_abort = [&](ByteWriter& w) { aborts.encode_args(w, 0); };
    auto read_abort = [&](ByteReader& r) { dead = aborts.decode_result(r); };
    std::vector<CallRequest> batch{{big.index(), write_big, read_big, 0, {}},
                                   {aborts.index(), write_abort, read_abort, 0, {}}};
    pool.call_batch(0, batch);
    CHECK(batch[0].outcome.kind == Kind::ok);
    CHECK(s == std::string(3 * cap, 'x'));
    CHECK(batch[1].outcome.kind == Kind::died);
    CHECK(test_support::our_segments().empty());
}

TEST_CASE("process workers: a worker killed while its result segment is made fails the call and leaves none" *
          doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    StallsInSegment s;
    std::size_t made = 0;
    bool killed = false;
    std::thread killer([&] {
        wait_started();
        made = test_support::our_segments().size();
        killed = pool.kill(0);
    });
    const CallOutcome o = call(pool, 0, stalls_in_segment, s, pool.slot_capacity() * 2);
    killer.join();
    CHECK(made == 1);  // made, not posted
    CHECK(killed);
    CHECK(o.kind == Kind::killed);
    CHECK(test_support::our_segments().empty());
}

TEST_CASE("process workers: a batch runs many tasks with one wake-up" * doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    constexpr int count = 200;
    std::vector<int> in(count), out(count, -1);
    for (int i = 0; i < count; ++i) in[i] = i;
    struct Codec {
        int* in;
        int* out;
        void operator()(ByteWriter& w) const { add_one.encode_args(w, *in); }
        void operator()(ByteReader& r) const { *out = add_one.decode_result(r); }
    };
    std::vector<Codec> codecs;
    for (int i = 0; i < count; ++i) codecs.push_back(Codec{&in[i], &out[i]});
    std::vector<CallRequest> batch;
    for (int i = 0; i < count; ++i)
        batch.push_back(CallRequest{add_one.index(), codecs[i], codecs[i], static_cast<std::uint64_t>(i), {}});
    pool.call_batch(0, batch);
    for (int i = 0; i < count; ++i) {
        CAPTURE(i);
        CHECK(batch[i].outcome.kind == Kind::ok);
        CHECK(out[i] == i + 1);
    }
}

namespace {
struct BigCodec {
    std::size_t n;
    std::string* out;
    void operator()(ByteWriter& w) const { big.encode_args(w, n); }
    void operator()(ByteReader& r) const { *out = big.decode_result(r); }
};
}  // namespace

TEST_CASE("process workers: results larger than the space left go in further chunks" * doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    const std::size_t each = pool.slot_capacity() / 3;
    std::vector<std::string> out(7);
    std::vector<BigCodec> codecs;
    for (std::size_t i = 0; i < out.size(); ++i) codecs.push_back(BigCodec{each + i, &out[i]});
    std::vector<CallRequest> batch;
    for (auto& c : codecs) batch.push_back(CallRequest{big.index(), c, c, 0, {}});
    pool.call_batch(0, batch);
    for (std::size_t i = 0; i < out.size(); ++i) {
        CAPTURE(i);
        CHECK(batch[i].outcome.kind == Kind::ok);
        CHECK(out[i] == std::string(each + i, 'x'));
    }
}

namespace {
// Encoders and decoders for an int-to-int task chosen at run time.
struct AnyIntCodec {
    void (*encode)(ByteWriter&, int);
    int (*decode)(ByteReader&);
    int in;
    int* out;
    void operator()(ByteWriter& w) const { encode(w, in); }
    void operator()(ByteReader& r) const { *out = decode(r); }
};
template <const auto& Task>
AnyIntCodec int_codec(int in, int* out) {
    return AnyIntCodec{[](ByteWriter& w, int v) { Task.encode_args(w, v); },
                       [](ByteReader& r) -> int { return Task.decode_result(r); }, in, out};
}
}  // namespace

TEST_CASE("process workers: a death mid-batch keeps earlier results and leaves later tasks not run" *
          doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    int out[5] = {-1, -1, -1, -1, -1};
    AnyIntCodec codecs[5] = {int_codec<add_one>(1, &out[0]), int_codec<add_one>(2, &out[1]),
                             int_codec<aborts>(0, &out[2]), int_codec<add_one>(3, &out[3]),
                             int_codec<add_one>(4, &out[4])};
    const std::uint32_t index[5] = {add_one.index(), add_one.index(), aborts.index(), add_one.index(),
                                    add_one.index()};
    std::vector<CallRequest> batch;
    for (int i = 0; i < 5; ++i) batch.push_back(CallRequest{index[i], codecs[i], codecs[i], 0, {}});
    pool.call_batch(0, batch);
    CHECK(batch[0].outcome.kind == Kind::ok);
    CHECK(out[0] == 2);
    CHECK(batch[1].outcome.kind == Kind::ok);
    CHECK(out[1] == 3);
    CHECK(batch[2].outcome.kind == Kind::died);
    CHECK(batch[2].outcome.error_message == "worker process killed by signal 6 (SIGABRT)");
    CHECK(batch[3].outcome.kind == Kind::not_run);
    CHECK_FALSE(batch[3].outcome.started);
    CHECK(batch[4].outcome.kind == Kind::not_run);
    CHECK(out[3] == -1);
}

TEST_CASE("process workers: cancel() withdraws a queued task and kills a running one" * doctest::timeout(30)) {
    WorkerProcesses pool;
    pool.spawn(0);
    int out[3] = {-1, -1, -1};
    {
        // gated (tag 1) runs and waits; add_one (tag 2) is withdrawn meanwhile.
        AnyIntCodec codecs[3] = {int_codec<gated>(5, &out[0]), int_codec<add_one>(1, &out[1]),
                                 int_codec<add_one>(2, &out[2])};
        std::vector<CallRequest> batch = {CallRequest{gated.index(), codecs[0], codecs[0], 1, {}},
                                          CallRequest{add_one.index(), codecs[1], codecs[1], 2, {}},
                                          CallRequest{add_one.index(), codecs[2], codecs[2], 3, {}}};
        std::thread canceler([&] {
            wait_started();
            CHECK(pool.cancel(0, 2));
            CHECK_FALSE(pool.cancel(0, 99));
            release();
        });
        pool.call_batch(0, batch);
        canceler.join();
        CHECK(batch[0].outcome.kind == Kind::ok);
        CHECK(out[0] == 10);
        CHECK(batch[1].outcome.kind == Kind::canceled);
        CHECK_FALSE(batch[1].outcome.started);
        CHECK(out[1] == -1);
        CHECK(batch[2].outcome.kind == Kind::ok);
        CHECK(out[2] == 3);
        CHECK(pool.running(0));
    }
    {
        AnyIntCodec codecs[2] = {int_codec<block>(0, &out[0]), int_codec<add_one>(1, &out[1])};
        std::vector<CallRequest> batch = {CallRequest{block.index(), codecs[0], codecs[0], 7, {}},
                                          CallRequest{add_one.index(), codecs[1], codecs[1], 8, {}}};
        std::thread canceler([&] {
            wait_started();
            CHECK(pool.cancel(0, 7));
        });
        pool.call_batch(0, batch);
        canceler.join();
        CHECK(batch[0].outcome.kind == Kind::killed);
        CHECK(batch[0].outcome.started);
        CHECK(batch[1].outcome.kind == Kind::not_run);
        CHECK_FALSE(pool.running(0));
    }
}

TEST_CASE("process workers: only one pool uses the workers at a time" * doctest::timeout(30)) {
    WorkerProcesses pool;
    CHECK_THROWS_AS(WorkerProcesses{}, at::Error);
    CHECK_THROWS_AS(pool.spawn(1000), at::Error);
}

TEST_CASE("process workers: stop() reaps every worker" * doctest::timeout(30)) {
    const std::size_t fds = count_fds();
    const pid_t zygote = at::detail::runtime_zygote().pid();
    {
        WorkerProcesses pool;
        const std::size_t slots[] = {0, 1, 2, 3};
        pool.spawn(slots);
        CHECK(children_of(zygote).size() == 4);
        CHECK(count_fds() > fds);
        pool.stop();
        CHECK(children_of(zygote).empty());
        CHECK(count_fds() == fds);
    }
    CHECK(children_of(::getpid()) == std::vector<pid_t>{zygote});
}

TEST_CASE("process workers: the runtime shuts down without a child or fd left" * doctest::timeout(30)) {
    Child c = spawn_self({"--scenario=shutdown"});
    const std::string line = read_line(c.out);
    ::close(c.out);
    const int st = wait_exit(c.pid);
    CHECK(line == "ok");
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("process workers: a parent killed with SIGKILL leaves no worker behind" * doctest::timeout(30)) {
    Child c = spawn_self({"--scenario=orphan"});
    std::istringstream pids(read_line(c.out));
    std::vector<int> fds;
    pid_t p = 0;
    while (pids >> p) {
        const int fd = pidfd_open(p);
        REQUIRE(fd >= 0);
        fds.push_back(fd);
    }
    REQUIRE(fds.size() == 3);  // the zygote and two workers
    REQUIRE(::kill(c.pid, SIGKILL) == 0);
    const int st = wait_exit(c.pid);
    CHECK(WIFSIGNALED(st));
    ::close(c.out);
    // A pidfd turns readable when its process has ended.
    std::vector<pollfd> pfds;
    for (int fd : fds) pfds.push_back(pollfd{fd, POLLIN, 0});
    std::size_t ended = 0;
    while (ended < pfds.size()) {
        const int n = ::poll(pfds.data(), pfds.size(), -1);
        REQUIRE((n > 0 || errno == EINTR));
        for (auto& pf : pfds)
            if (pf.revents != 0 && pf.fd >= 0) {
                ::close(pf.fd);
                pf.fd = -1;
                ++ended;
            }
    }
    CHECK(ended == 3);
}

namespace {

// Child: start a pool, use it, stop everything, then check that no child
// process and no extra fd is left. Prints "ok" or what went wrong.
int scenario_shutdown() {
    const std::size_t before = count_fds();
    at::init({.max_workers = 4, .slot_size = 1 << 16});
    {
        WorkerProcesses pool;
        const std::size_t slots[] = {0, 1, 2};
        pool.spawn(slots);
        int r = 0;
        if (call(pool, 2, add_one, r, 1).kind != Kind::ok || r != 2) {
            std::printf("call failed\n");
            return 1;
        }
        pool.stop();
    }
    at::detail::shutdown_process_runtime();
    if (at::initialized()) {
        std::printf("still initialized\n");
        return 1;
    }
    errno = 0;
    if (::waitpid(-1, nullptr, WNOHANG) != -1 || errno != ECHILD) {
        std::printf("a child process is left\n");
        return 1;
    }
    if (const std::size_t after = count_fds(); after != before) {
        std::printf("%zu fds before, %zu after\n", before, after);
        return 1;
    }
    std::printf("ok\n");
    return 0;
}

// Child: start two workers, print the zygote's and their pids, wait to be killed.
int scenario_orphan() {
    at::init({.max_workers = 4, .slot_size = 1 << 16});
    WorkerProcesses pool;
    const std::size_t slots[] = {0, 1};
    pool.spawn(slots);
    std::printf("%d %d %d\n", static_cast<int>(at::detail::runtime_zygote().pid()), static_cast<int>(pool.pid(0)),
                static_cast<int>(pool.pid(1)));
    std::fflush(stdout);
    for (;;) ::pause();
}

// Child: init() after a thread started logs a warning (printed) and works.
int scenario_late_init() {
    std::string warning;
    at::set_log_sink([&](at::LogLevel level, std::string_view message) {
        if (level == at::LogLevel::warning) warning = message;
    });
    std::latch running(1);
    std::latch done(1);
    std::thread t([&] {
        running.count_down();
        done.wait();
    });
    running.wait();
    at::init({.max_workers = 2, .slot_size = 1 << 16});
    at::init();  // a second call does nothing
    done.count_down();
    t.join();
    WorkerProcesses pool;
    pool.spawn(1);
    int r = 0;
    const bool ok = call(pool, 1, add_one, r, 1).kind == Kind::ok && r == 2;
    std::printf("%s|%s\n", ok ? "ok" : "failed", warning.c_str());
    return 0;
}

}  // namespace

TEST_CASE("process workers: init() after threads started warns and still works" * doctest::timeout(30)) {
    Child c = spawn_self({"--scenario=late-init"});
    const std::string line = read_line(c.out);
    ::close(c.out);
    const int st = wait_exit(c.pid);
    CHECK(WIFEXITED(st));
    // At least the scenario's two threads (a sanitizer runtime may add its own).
    CHECK(line.starts_with("ok|at::init() found "));
    CHECK(line.find(" threads already running; forking the process pool's zygote now") != std::string::npos);
}

int main(int argc, char** argv) {
    if (argc > 1 && std::string_view(argv[1]) == "--scenario=shutdown") return scenario_shutdown();
    if (argc > 1 && std::string_view(argv[1]) == "--scenario=orphan") return scenario_orphan();
    if (argc > 1 && std::string_view(argv[1]) == "--scenario=late-init") return scenario_late_init();
    if (::pipe2(started_pipe, O_CLOEXEC) != 0 || ::pipe2(release_pipe, O_CLOEXEC) != 0) return 2;
    at::init({.max_workers = 8, .slot_size = 1 << 16});
    doctest::Context context(argc, argv);
    return context.run();
}
