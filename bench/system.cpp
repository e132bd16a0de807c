// OS helpers for the scenarios: /proc readers, pinning, the Python peers.
#include "system.hpp"

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <tbb/scalable_allocator.h>

extern char** environ;

namespace atasker_bench {

namespace fs = std::filesystem;

std::int64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

namespace {

// The parent's pid, field 4 of /proc/<pid>/stat, after the command name
// (which may hold spaces).
std::optional<pid_t> read_ppid(const fs::path& stat_path) {
    std::ifstream in(stat_path);
    std::string text;
    if (!std::getline(in, text)) return std::nullopt;
    auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream rest(text.substr(close + 2));
    std::string state;  // field 3
    pid_t ppid = 0;
    if (!(rest >> state >> ppid)) return std::nullopt;
    return ppid;
}

std::vector<pid_t> descendants() {
    std::multimap<pid_t, pid_t> children;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
        if (auto ppid = read_ppid(entry.path() / "stat")) children.emplace(*ppid, static_cast<pid_t>(std::stol(name)));
    }
    std::vector<pid_t> out;
    std::vector<pid_t> todo{getpid()};
    while (!todo.empty()) {
        pid_t p = todo.back();
        todo.pop_back();
        auto [b, e] = children.equal_range(p);
        for (auto it = b; it != e; ++it) {
            out.push_back(it->second);
            todo.push_back(it->second);
        }
    }
    return out;
}

// Adds each thread of process `pid` but `except` to `out`.
void add_threads_cpu(pid_t pid, pid_t except, ThreadCpu& out) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(fs::path("/proc") / std::to_string(pid) / "task", ec)) {
        const auto tid = static_cast<pid_t>(std::stol(entry.path().filename().string()));
        std::ifstream in(entry.path() / "schedstat");
        std::uint64_t ns = 0;
        if (tid != except && in >> ns) out[tid] = ns;
    }
}

}  // namespace

ThreadCpu others_cpu() {
    ThreadCpu out;
    add_threads_cpu(getpid(), gettid(), out);
    for (pid_t p : descendants()) add_threads_cpu(p, 0, out);
    return out;
}

double cpu_seconds_between(const ThreadCpu& before, const ThreadCpu& after) {
    std::uint64_t ns = 0;
    for (const auto& [tid, now] : after) {
        const auto it = before.find(tid);
        ns += now - (it != before.end() && it->second <= now ? it->second : 0);
    }
    return static_cast<double>(ns) / 1e9;
}

std::size_t rss_bytes() {
    std::ifstream in("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    in >> size >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::size_t heap_bytes() {
    const struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

void trim_heap() {
    malloc_trim(0);
    // oneTBB's scalable allocator holds atasker-cpp's tasks and oneTBB's own.
    (void)scalable_allocation_command(TBBMALLOC_CLEAN_ALL_BUFFERS, nullptr);
}

bool shorten_time_slice() {
    struct {  // the kernel's struct sched_attr, which glibc 2.36 does not declare
        std::uint32_t size, policy;
        std::uint64_t flags;
        std::int32_t nice;
        std::uint32_t priority;
        std::uint64_t runtime, deadline, period;
        std::uint32_t util_min, util_max;
    } attr{};
    if (::syscall(SYS_sched_getattr, 0, &attr, sizeof(attr), 0) != 0) return false;
    attr.size = sizeof(attr);
    attr.flags = 0;
    attr.runtime = 100'000;
    return ::syscall(SYS_sched_setattr, 0, &attr, 0) == 0;
}

bool pin_process_tree(const std::vector<int>& cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpus.empty()) {
        const long n = sysconf(_SC_NPROCESSORS_CONF);
        for (long i = 0; i < n && i < CPU_SETSIZE; ++i) CPU_SET(static_cast<int>(i), &set);
    } else {
        for (int c : cpus) CPU_SET(c, &set);
    }
    bool ok = true;
    std::vector<pid_t> procs = descendants();
    procs.push_back(getpid());
    for (pid_t p : procs) {
        std::error_code ec;
        for (const auto& t : fs::directory_iterator(fs::path("/proc") / std::to_string(p) / "task", ec)) {
            const auto tid = static_cast<pid_t>(std::stol(t.path().filename().string()));
            if (sched_setaffinity(tid, sizeof set, &set) != 0 && errno != ESRCH) ok = false;
        }
    }
    return ok;
}

namespace {

std::string find_script(const std::string& name) {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path beside = exe.parent_path() / name;
        if (fs::exists(beside, ec)) return beside.string();
    }
#ifdef ATASKER_BENCH_SOURCE_DIR
    const fs::path source = fs::path(ATASKER_BENCH_SOURCE_DIR) / name;
    if (fs::exists(source, ec)) return source.string();
#endif
    return {};
}

std::string find_python() {
    for (const char* p : {"/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"})
        if (access(p, X_OK) == 0) return p;
    return {};
}

}  // namespace

std::optional<std::string> run_python_peers(const std::string& script_name, const std::vector<std::string>& args,
                                            std::string& why) {
    const std::string python = find_python();
    if (python.empty()) {
        why = "python3 not found: Python peers skipped";
        return std::nullopt;
    }
    const std::string script = find_script(script_name);
    if (script.empty()) {
        why = script_name + " not found next to atasker-bench or in the source tree: Python peers skipped";
        return std::nullopt;
    }
    std::vector<std::string> all{python, script};
    all.insert(all.end(), args.begin(), args.end());
    auto text = run_captured(all, why);
    if (!text) why += "; Python peers skipped";
    return text;
}

std::optional<std::string> run_captured(std::vector<std::string> argv_strings, std::string& why) {
    std::vector<char*> argv;
    for (auto& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string& exe = argv_strings.at(0);

    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        why = fmt::format("cannot create a pipe for {}: errno {}", exe, errno);
        return std::nullopt;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        why = fmt::format("cannot start {}: error {}", exe, rc);
        return std::nullopt;
    }
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = read(out[0], buf, sizeof buf);
        if (n > 0) text.append(buf, static_cast<std::size_t>(n));
        else if (n == 0 || errno != EINTR) break;
    }
    close(out[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        why = fmt::format("{} {} failed (status {})", exe, argv_strings.size() > 1 ? argv_strings[1] : "", status);
        return std::nullopt;
    }
    return text;
}

}  // namespace atasker_bench
