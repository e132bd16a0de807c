#pragma once
/// \file log.hpp
/// The library's log: atasker's levels, a sink the user can replace, and
/// set_debug(). By default warnings and above go to stderr. Thread-safe.

#include <functional>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include <atasker/export.hpp>

namespace atasker {

/// atasker's log levels, least to most severe.
enum class LogLevel { debug, info, warning, error, critical };

/// The level's name: "debug", "info", "warning", "error" or "critical".
[[nodiscard]] constexpr std::string_view to_string(LogLevel l) noexcept {
    switch (l) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warning: return "warning";
        case LogLevel::error: return "error";
        case LogLevel::critical: return "critical";
    }
    return "unknown";
}

/// Receives every message at or above the current level. It may be called
/// from any thread, concurrently; it must not throw.
using LogSink = std::function<void(LogLevel, std::string_view)>;

/// Replaces the sink; an empty function restores the default (stderr).
ATASKER_API void set_log_sink(LogSink sink);
/// Messages below `level` are dropped before they are formatted.
ATASKER_API void set_log_level(LogLevel level);
/// As atasker's set_debug: true lowers the level to debug, false restores warning.
ATASKER_API void set_debug(bool on = true);
/// True when a message at `level` would reach the sink.
[[nodiscard]] ATASKER_API bool log_enabled(LogLevel level) noexcept;
/// Sends an already formatted message to the sink (no level check).
ATASKER_API void log_message(LogLevel level, std::string_view message) noexcept;

/// Formats with fmt and logs, if the level is enabled.
template <class... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
    if (log_enabled(level)) log_message(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace atasker

template <>
struct fmt::formatter<atasker::LogLevel> : fmt::formatter<std::string_view> {
    auto format(atasker::LogLevel v, format_context& ctx) const {
        return fmt::formatter<std::string_view>::format(atasker::to_string(v), ctx);
    }
};
