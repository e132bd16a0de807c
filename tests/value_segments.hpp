#pragma once
// What a test checks after values larger than the slot crossed: the
// shared-memory segments of this process left in /dev/shm (named
// "atasker-<pid>-..."), the fds open here, and a process's resident memory.

#include <dirent.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace test_support {

/// The names in /dev/shm of this process's value segments.
inline std::vector<std::string> our_segments() {
    const std::string prefix = "atasker-" + std::to_string(::getpid()) + "-";
    std::vector<std::string> out;
    DIR* d = ::opendir("/dev/shm");
    if (d == nullptr) return out;
    while (const dirent* e = ::readdir(d))
        if (std::string(e->d_name).starts_with(prefix)) out.emplace_back(e->d_name);
    ::closedir(d);
    return out;
}

/// The fds open in this process that lead to /dev/shm or to a memfd.
inline std::vector<std::string> shm_fds() {
    std::vector<std::string> out;
    DIR* d = ::opendir("/proc/self/fd");
    if (d == nullptr) return out;
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        char target[512] = {};
        const std::string link = std::string("/proc/self/fd/") + e->d_name;
        const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        if (n <= 0) continue;
        const std::string t(target, static_cast<std::size_t>(n));
        if (t.starts_with("/dev/shm/") || t.starts_with("/memfd:")) out.push_back(t);
    }
    ::closedir(d);
    return out;
}

/// The resident memory of process `pid` (0: this one), in bytes.
inline std::size_t resident_bytes(pid_t pid = 0) {
    std::ifstream in(pid == 0 ? std::string("/proc/self/statm") : "/proc/" + std::to_string(pid) + "/statm");
    std::size_t size = 0;
    std::size_t resident = 0;
    in >> size >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace test_support
