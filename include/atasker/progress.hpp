#pragma once
/// \file progress.hpp
/// The progress reporter a task function may take (icij-worker's idea): the
/// values it reports, 0.0 to 1.0, show up in the task's TaskInfo.progress.

#include <fmt/format.h>

#include <atasker/error.hpp>

namespace atasker {

/// Handed to a task function that takes `at::Progress` (by value or
/// reference) as a parameter. Cheap to copy; valid while the task runs.
/// report() is safe to call from the task's own thread or process.
class Progress {
public:
    /// Where reports go; the library supplies it (a task never makes one).
    using Sink = void (*)(void* context, double value) noexcept;

    /// A reporter whose reports go nowhere (they are still checked).
    constexpr Progress() noexcept = default;
    /// A reporter that hands each report to `sink(context, value)`.
    constexpr Progress(Sink sink, void* context) noexcept : sink_(sink), context_(context) {}

    /// Publishes `value` into the task's record.
    /// \throws Error when value is outside [0.0, 1.0] (or NaN).
    void report(double value) const {
        if (!(value >= 0.0 && value <= 1.0))
            throw Error(fmt::format("progress must be between 0.0 and 1.0, got {}; report a fraction of the work done",
                                    value));
        if (sink_ != nullptr) sink_(context_, value);
    }
    /// Same as report(value).
    void operator()(double value) const { report(value); }

private:
    Sink sink_ = nullptr;
    void* context_ = nullptr;
};

}  // namespace atasker
