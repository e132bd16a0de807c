#pragma once
// Helpers shared by the doctest suites: a gate tasks block on, and a log
// sink that records what the library says.

#include <latch>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <atasker/log.hpp>

namespace test_support {

/// A one-shot gate: tasks wait() until the test open()s it.
class Gate {
public:
    void open() { latch_.count_down(); }
    void wait() const { latch_.wait(); }

private:
    mutable std::latch latch_{1};
};

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

/// Captures log lines while alive; restores the default sink after.
class LogCapture {
public:
    LogCapture() {
        atasker::set_log_sink([this](atasker::LogLevel level, std::string_view line) {
            std::lock_guard lock(mutex_);
            lines_.emplace_back(level, std::string(line));
        });
    }
    ~LogCapture() { atasker::set_log_sink({}); }
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    std::vector<std::pair<atasker::LogLevel, std::string>> lines() const {
        std::lock_guard lock(mutex_);
        return lines_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::pair<atasker::LogLevel, std::string>> lines_;
};

}  // namespace test_support
