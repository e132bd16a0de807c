#include <atasker/locker.hpp>

#include <fmt/chrono.h>

#include <atasker/detail/task_base.hpp>
#include <atasker/log.hpp>

namespace atasker {

Locker::Locker(LockerOptions options) : options_(std::move(options)) {
    if (options_.timeout.count() < 0)
        throw Error(fmt::format("locker '{}': the timeout must not be negative", options_.mod));
}

Locker::~Locker() = default;

Locker::Guard Locker::lock(std::string_view what) {
    const auto me = std::this_thread::get_id();
    {
        std::unique_lock lock(mutex_);
        if (options_.relative && depth_ > 0 && owner_ == me) {
            ++depth_;
            return Guard(this);
        }
        if (released_.wait_for(lock, options_.timeout, [this] { return depth_ == 0; })) {
            owner_ = me;
            depth_ = 1;
            return Guard(this);
        }
    }
    const std::string label = what.empty() ? std::string("lock") : std::string(what);
    bool handled = false;
    if (options_.on_timeout) {
        try {
            options_.on_timeout(label);
            handled = true;
        } catch (...) {
            log(LogLevel::error, "locker '{}': on_timeout threw: {}", options_.mod,
                detail::describe(std::current_exception()));
        }
    }
    if (!handled) log(LogLevel::critical, "{}/{} locking broken", options_.mod, label);
    throw TimeoutError(fmt::format("locker '{}': could not lock for '{}' within {}; its holder is stuck or the "
                                   "timeout is too short",
                                   options_.mod, label,
                                   std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout)));
}

void Locker::unlock() noexcept {
    {
        std::lock_guard lock(mutex_);
        if (depth_ == 0 || --depth_ > 0) return;
        owner_ = {};
    }
    released_.notify_one();
}

}  // namespace atasker
