#include <atasker/log.hpp>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>

namespace atasker {
namespace {

std::atomic<LogLevel> current_level{LogLevel::warning};

struct SinkHolder {
    std::mutex mutex;
    std::shared_ptr<const LogSink> sink;
};

SinkHolder& holder() {
    // Never destroyed: supervisors log while they stop at exit, which may be
    // after this holder was made, and so after a static one was destroyed.
    static auto* h = new SinkHolder;
    return *h;
}

void default_sink(LogLevel level, std::string_view message) {
    fmt::print(stderr, "atasker {}: {}\n", level, message);
}

}  // namespace

void set_log_sink(LogSink sink) {
    auto next = sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr;
    std::lock_guard lock(holder().mutex);
    holder().sink = std::move(next);
}

void set_log_level(LogLevel level) { current_level.store(level, std::memory_order_relaxed); }

void set_debug(bool on) { set_log_level(on ? LogLevel::debug : LogLevel::warning); }

bool log_enabled(LogLevel level) noexcept {
    return level >= current_level.load(std::memory_order_relaxed);
}

void log_message(LogLevel level, std::string_view message) noexcept {
    std::shared_ptr<const LogSink> sink;
    {
        std::lock_guard lock(holder().mutex);
        sink = holder().sink;
    }
    try {
        if (sink) {
            (*sink)(level, message);
        } else {
            default_sink(level, message);
        }
    } catch (...) {
        // A sink must not throw; a log line is not worth terminating for.
    }
}

}  // namespace atasker
