// Values larger than the worker slot cross through a shared-memory segment
// made for the call: real forks, real /dev/shm segments, real SIGKILLs.
// Each case checks the content both ways and that no segment and no fd of
// ours is left behind.
//
// Own main: at::init() must fork the zygote before anything starts a thread.
// One worker process (pool_size 1), so its memory can be watched across calls.
// The slots hold 64 KiB: every value of a MiB or more takes a segment.

#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <atasker/atasker.hpp>

#include "value_segments.hpp"

namespace at = atasker;
using test_support::our_segments;
using test_support::resident_bytes;
using test_support::shm_fds;
using Bytes = std::vector<std::byte>;

namespace {

constexpr std::size_t MiB = std::size_t{1} << 20;

// Worker -> test: the pid of a worker that is holding a segment.
int pid_pipe[2] = {-1, -1};

void send_pid() {
    const pid_t pid = ::getpid();
    if (::write(pid_pipe[1], &pid, sizeof pid) != sizeof pid) throw std::runtime_error("cannot write the pid pipe");
}
pid_t receive_pid() {
    pid_t pid = 0;
    REQUIRE(::read(pid_pipe[0], &pid, sizeof pid) == sizeof pid);
    return pid;
}

// A pattern that tells values with different seeds apart, and every 64 KiB
// block of a value, and every 8-byte word of a block: each block is one
// patterned block whose first word names the block and the seed. Written
// and compared a block at a time (memcpy, memcmp), so that sanitizers,
// which instrument a loop over words, check it as fast as the rest.
constexpr std::size_t block = 64 * 1024;
const Bytes& base_block() {
    static const Bytes b = [] {
        Bytes v(block);
        for (std::size_t i = 0; i < block / 8; ++i) {
            const std::uint64_t w = (i + 1) * 0x9E3779B97F4A7C15ULL;
            std::memcpy(v.data() + i * 8, &w, 8);
        }
        return v;
    }();
    return b;
}
std::uint64_t block_word(std::size_t b, std::uint64_t seed) { return (b + 1) * 0xC2B2AE3D27D4EB4FULL ^ seed; }
void fill(Bytes& v, std::uint64_t seed) {
    for (std::size_t at = 0; at < v.size(); at += block) {
        const std::size_t n = std::min(block, v.size() - at);
        std::memcpy(v.data() + at, base_block().data(), n);
        const std::uint64_t w = block_word(at / block, seed);
        std::memcpy(v.data() + at, &w, std::min<std::size_t>(8, n));
    }
}
bool has_pattern(const Bytes& v, std::uint64_t seed) {
    for (std::size_t at = 0; at < v.size(); at += block) {
        const std::size_t n = std::min(block, v.size() - at);
        const std::uint64_t w = block_word(at / block, seed);
        if (std::memcmp(v.data() + at, &w, std::min<std::size_t>(8, n)) != 0) return false;
        if (n > 8 && std::memcmp(v.data() + at + 8, base_block().data() + 8, n - 8) != 0) return false;
    }
    return true;
}
Bytes patterned(std::size_t size, std::uint64_t seed) {
    Bytes v(size);
    fill(v, seed);
    return v;
}

// Checks the argument's pattern, answers with the next one, in place.
const at::MpTask next_pattern{"lv.next_pattern", [](Bytes v, std::uint64_t seed) {
                                  if (!has_pattern(v, seed)) throw std::runtime_error("the argument arrived altered");
                                  fill(v, seed + 1);
                                  return v;
                              }};
const at::MpTask size_of{"lv.size_of", [](const Bytes& v) { return v.size(); }};
const at::MpTask make{"lv.make", [](std::size_t size) { return patterned(size, size); }};
const at::MpTask worker_memory{"lv.worker_memory",
                               [] { return std::pair{static_cast<int>(::getpid()), resident_bytes()}; }};
const at::MpTask hold{"lv.hold", [](const Bytes&) -> int {
                          send_pid();
                          for (;;) ::pause();
                      }};

// A result whose encoding stops, for the test to kill its worker, once it
// writes into the segment made for it: the slot's try (too large: it counts
// on past the slot's end), then the segment.
struct StallsInSegment {
    Bytes bytes;
    template <class Archive>
    void save(Archive& ar) const {
        static int passes = 0;
        if (++passes == 2) {
            send_pid();
            for (;;) ::pause();
        }
        ar(bytes);
    }
    template <class Archive>
    void load(Archive& ar) {
        ar(bytes);
    }
};
const at::MpTask stall{"lv.stall", [](std::size_t size) { return StallsInSegment{Bytes(size)}; }};

// The file size limit (ulimit -f) refuses a segment as a full /dev/shm would.
void limit_file_size(rlim_t bytes) {
    ::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of a signal
    rlimit r{};
    ::getrlimit(RLIMIT_FSIZE, &r);
    r.rlim_cur = bytes;
    if (::setrlimit(RLIMIT_FSIZE, &r) != 0) throw std::runtime_error("cannot set RLIMIT_FSIZE");
}
const at::MpTask limited_make{"lv.limited_make", [](std::size_t size) {
                                  limit_file_size(MiB);
                                  return patterned(size, 1);
                              }};
const at::MpTask unlimit{"lv.unlimit", [] { limit_file_size(RLIM_INFINITY); }};

void check_nothing_left() {
    CHECK(our_segments().empty());
    CHECK(shm_fds().empty());
}

}  // namespace

TEST_CASE("large values: 256 MiB go into a worker and come back, byte for byte" * doctest::timeout(300)) {
    struct statvfs fs{};
    REQUIRE(::statvfs("/dev/shm", &fs) == 0);
    // Argument and result segments exist at the same time in the call.
    const std::size_t room = fs.f_bavail * fs.f_frsize;
    Bytes big = patterned(256 * MiB, 7);
    auto t = at::background_task(next_pattern)(std::move(big), std::uint64_t{7});
    if (room < 600 * MiB) {
        // A small /dev/shm (docker's default is 64 MiB) refuses the segment with a clear error.
        MESSAGE("/dev/shm has ", room / MiB, " MiB free: checking the error instead");
        CHECK_THROWS_AS((void)t.get(), at::SystemError);
    } else {
        const Bytes back = t.get();
        CHECK(back.size() == 256 * MiB);
        CHECK(has_pattern(back, 8));
    }
    check_nothing_left();
}

// The timeout only catches a hang: ~180 s alone under ThreadSanitizer on 2
// vCPUs, and CI runs two tests at a time.
TEST_CASE("large values: after 100 calls, memory, /dev/shm and fds are where they started" *
          doctest::timeout(600)) {
    // Warm up: the allocators of both processes take their shape.
    for (std::uint64_t i = 0; i < 3; ++i)
        CHECK(at::background_task(next_pattern)(patterned(4 * MiB, i), i).get().size() == 4 * MiB);
    const auto [pid, worker_before] = at::background_task(worker_memory)().get();
    const std::size_t parent_before = resident_bytes();
    // 100 calls of 4 MiB each way, and 3 of 256 MiB each way: the memcpy of
    // 100 x 256 MiB is too slow for CI; the path is the same.
    for (std::uint64_t i = 0; i < 100; ++i) {
        const Bytes back = at::background_task(next_pattern)(patterned(4 * MiB, i), i).get();
        REQUIRE(has_pattern(back, i + 1));
    }
    for (int i = 0; i < 3; ++i) CHECK(at::background_task(size_of)(Bytes(256 * MiB)).get() == 256 * MiB);
    for (int i = 0; i < 3; ++i) CHECK(at::background_task(make)(std::size_t{256 * MiB}).get().size() == 256 * MiB);
    const auto [pid_after, worker_after] = at::background_task(worker_memory)().get();
    const std::size_t parent_after = resident_bytes();
    REQUIRE(pid_after == pid);  // the same worker all along
    MESSAGE("parent RSS ", parent_before / MiB, " -> ", parent_after / MiB, " MiB; worker RSS ",
            worker_before / MiB, " -> ", worker_after / MiB, " MiB");
    // A leak of one value per call would be 400 MiB at least; malloc may keep a few MiB.
    CHECK(parent_after < parent_before + 64 * MiB);
    CHECK(worker_after < worker_before + 64 * MiB);
    check_nothing_left();
}

TEST_CASE("large values: at::map sends a huge item in a request of its own and gets huge results back" *
          doctest::timeout(60)) {
    std::vector<Bytes> inputs;
    for (const std::size_t size : {16UL, 16UL, 3 * MiB, 16UL, 2 * MiB, 5 * MiB, 16UL}) inputs.emplace_back(size);
    std::vector<std::size_t> expected;
    for (const Bytes& b : inputs) expected.push_back(b.size());
    CHECK(at::map(size_of, inputs, {.chunksize = inputs.size()}) == expected);
    const std::vector<Bytes> made = at::map(make, expected, {.chunksize = expected.size()});
    REQUIRE(made.size() == expected.size());
    for (std::size_t i = 0; i < made.size(); ++i) {
        CHECK(made[i].size() == expected[i]);
        CHECK(has_pattern(made[i], expected[i]));
    }
    check_nothing_left();
}

TEST_CASE("large values: a worker killed holding its argument's segment fails its task as a crash does" *
          doctest::timeout(60)) {
    auto t = at::background_task(hold)(patterned(16 * MiB, 1));
    REQUIRE(::kill(receive_pid(), SIGKILL) == 0);
    CHECK_THROWS_WITH_AS((void)t.get(), "worker process killed by signal 9 (SIGKILL)", at::RemoteError);
    check_nothing_left();
    CHECK(at::background_task(size_of)(Bytes(2 * MiB)).get() == 2 * MiB);  // its replacement works
}

TEST_CASE("large values: a worker killed while it writes its result's segment leaves no segment behind" *
          doctest::timeout(60)) {
    auto t = at::background_task(stall)(std::size_t{4 * MiB});
    const pid_t pid = receive_pid();
    // The segment exists while the worker writes it.
    CHECK(our_segments().size() == 1);
    REQUIRE(::kill(pid, SIGKILL) == 0);
    CHECK_THROWS_WITH_AS((void)t.get(), "worker process killed by signal 9 (SIGKILL)", at::RemoteError);
    check_nothing_left();
}

TEST_CASE("large values: a segment that cannot be made fails the task with an error that says what to do" *
          doctest::timeout(60)) {
    SUBCASE("the caller's, for an argument") {
        limit_file_size(MiB);
        auto t = at::background_task(size_of)(Bytes(4 * MiB));
        std::string message;
        try {
            (void)t.get();
        } catch (const at::SystemError& e) {
            message = e.what();
            CHECK(e.code() == std::errc::file_too_large);
        }
        limit_file_size(RLIM_INFINITY);
        CHECK(message.find("cannot make a 4194320-byte shared-memory segment /dev/shm/atasker-") == 0);
        CHECK(message.find("make room in /dev/shm or enlarge it") != std::string::npos);
    }
    SUBCASE("the worker's, for a result") {
        auto t = at::background_task(limited_make)(std::size_t{4 * MiB});
        try {
            (void)t.get();
            FAIL("the result crossed");
        } catch (const at::RemoteError& e) {
            CHECK(e.type_name() == "atasker::SystemError");
            CHECK(std::string(e.what()).find("make room in /dev/shm or enlarge it") != std::string::npos);
        }
        at::background_task(unlimit)().get();
    }
    check_nothing_left();
    CHECK(at::background_task(size_of)(Bytes(2 * MiB)).get() == 2 * MiB);
}

int main(int argc, char** argv) {
    if (::pipe(pid_pipe) != 0) return 2;
    at::init({.max_workers = 2, .slot_size = 64 * 1024});
    at::task_supervisor.set_mp_pool({.pool_size = 1});
    at::task_supervisor.start();
    doctest::Context context(argc, argv);
    const int rc = context.run();
    at::task_supervisor.stop();
    return rc;
}
