#pragma once
// Helpers shared by the doctest suites: a gate tasks block on, and a log
// sink that records what the library says.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <exception>
#include <fstream>
#include <iterator>
#include <latch>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <atasker/log.hpp>

namespace test_support {

/// How far a task record's times may lie from system_clock read at the same
/// instant: the library reads them from the TSC where the kernel offers it
/// as a clocksource (WallClock::tolerance, src/core/wall_clock.hpp).
inline constexpr std::chrono::microseconds record_clock_tolerance{10};

/// A one-shot gate: tasks wait() until the test open()s it.
class Gate {
public:
    void open() { latch_.count_down(); }
    void wait() const { latch_.wait(); }

private:
    mutable std::latch latch_{1};
};

/// Blocks until `token` is asked to stop; returns whether it was (always
/// true: there is no other way out). For tasks that must run until canceled.
inline bool wait_for_stop(const std::stop_token& token) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait(lock, token, [] { return false; });
    return token.stop_requested();
}

/// The smallest coroutine type: starts at once, runs to its end, and frees
/// its frame there. Tests learn the end through a latch the body counts
/// down as its last step.
struct Eager {
    struct promise_type {
        Eager get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
};

/// The calling thread's id, read afresh: clang 14 keeps pthread_self()'s
/// value (declared const) across a coroutine's suspension, although the
/// coroutine may go on on another thread (LLVM issue 47177).
[[gnu::noinline]] inline std::thread::id current_thread() {
    asm volatile("" ::: "memory");
    return std::this_thread::get_id();
}

/// Returns once the thread `tid` of this process is blocked (state S in
/// /proc): it watches the thread's state, it does not wait for a time.
inline void until_blocked(pid_t tid) {
    const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
    for (;;) {
        std::ifstream in(path);
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const std::size_t after_name = stat.rfind(')');
        if (after_name != std::string::npos && after_name + 2 < stat.size() && stat[after_name + 2] == 'S') return;
        std::this_thread::yield();
    }
}

/// The what() of the std::exception `e` holds.
inline std::string message_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    }
}

/// Thread-safe list of labels, in the order they were added.
class Trace {
public:
    void add(std::string label) {
        std::lock_guard lock(mutex_);
        labels_.push_back(std::move(label));
    }
    std::vector<std::string> labels() const {
        std::lock_guard lock(mutex_);
        return labels_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> labels_;
};

/// Captures log lines at `level` and above while alive; restores the
/// default sink and level (warning) after.
class LogCapture {
public:
    explicit LogCapture(atasker::LogLevel level = atasker::LogLevel::warning) {
        atasker::set_log_level(level);
        atasker::set_log_sink([this](atasker::LogLevel l, std::string_view line) {
            std::lock_guard lock(mutex_);
            lines_.emplace_back(l, std::string(line));
        });
    }
    ~LogCapture() {
        atasker::set_log_sink({});
        atasker::set_log_level(atasker::LogLevel::warning);
    }
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    std::vector<std::pair<atasker::LogLevel, std::string>> lines() const {
        std::lock_guard lock(mutex_);
        return lines_;
    }

    /// The lines logged at exactly `level`, in order.
    std::vector<std::string> at(atasker::LogLevel level) const {
        std::vector<std::string> out;
        std::lock_guard lock(mutex_);
        for (const auto& [l, line] : lines_)
            if (l == level) out.push_back(line);
        return out;
    }
    /// The lines at exactly `level` that start with `prefix`, in order.
    std::vector<std::string> at(atasker::LogLevel level, std::string_view prefix) const {
        std::vector<std::string> out;
        for (auto& line : at(level))
            if (line.starts_with(prefix)) out.push_back(std::move(line));
        return out;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::pair<atasker::LogLevel, std::string>> lines_;
};

}  // namespace test_support

#include <atasker/background_task.hpp>

namespace test_support {

/// Puts a task that holds one slot of `sup`'s thread pool until `gate`
/// opens, and returns once it runs.
inline atasker::Task<void> occupy(atasker::TaskSupervisor& sup, Gate& gate,
                                  atasker::Priority priority = atasker::Priority::low) {
    std::latch started{1};
    auto task = atasker::background_task(
        [&gate, &started] {
            started.count_down();
            gate.wait();
        },
        {.priority = priority, .supervisor = &sup})();
    started.wait();
    return task;
}

}  // namespace test_support
