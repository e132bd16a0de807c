#pragma once
// OneCpu: restricts this process, its threads and every process below it
// (the zygote, the workers) to one CPU, and gives each back its previous CPU
// set when it ends. A worker woken on the CPU of the thread that woke it
// usually runs before that thread goes on: the path a pinned caller takes.

#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace test_support {

class OneCpu {
public:
    /// Pins to the first CPU this thread may run on.
    OneCpu() {
        cpu_set_t mine;
        CPU_ZERO(&mine);
        ::sched_getaffinity(0, sizeof mine, &mine);
        int cpu = 0;
        while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &mine)) ++cpu;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        for (pid_t tid : threads_of_tree()) {
            cpu_set_t before;
            CPU_ZERO(&before);
            if (::sched_getaffinity(tid, sizeof before, &before) != 0) continue;  // gone
            if (::sched_setaffinity(tid, sizeof one, &one) == 0) saved_.emplace_back(tid, before);
        }
    }
    ~OneCpu() {
        for (auto& [tid, set] : saved_) (void)::sched_setaffinity(tid, sizeof set, &set);
    }
    OneCpu(const OneCpu&) = delete;
    OneCpu& operator=(const OneCpu&) = delete;

    /// Threads pinned (this process's and its descendants').
    [[nodiscard]] std::size_t pinned() const noexcept { return saved_.size(); }

private:
    // Every thread of this process and of the processes below it: the names
    // in /proc/<pid>/task, and each thread's children in .../children.
    static std::vector<pid_t> threads_of_tree() {
        std::vector<pid_t> threads;
        std::vector<pid_t> todo{::getpid()};
        while (!todo.empty()) {
            const pid_t pid = todo.back();
            todo.pop_back();
            std::error_code ec;
            for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
                threads.push_back(static_cast<pid_t>(std::stol(task.path().filename().string())));
                std::ifstream children(task.path() / "children");
                for (pid_t child = 0; children >> child;) todo.push_back(child);
            }
        }
        return threads;
    }

    std::vector<std::pair<pid_t, cpu_set_t>> saved_;
};

}  // namespace test_support
