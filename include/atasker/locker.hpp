#pragma once
/// \file locker.hpp
/// atasker's Locker: a lock taken with a timeout. When the timeout passes,
/// the lock is considered broken: a critical handler runs (atasker's
/// `critical()`; by default a critical log line) and the caller gets
/// at::TimeoutError instead of the lock.
///
///     at::Locker db_lock({.mod = "db", .timeout = 2s});
///     {
///         auto guard = db_lock.lock("update");   // unlocks when it goes out of scope
///         ...
///     }
///     int n = db_lock.run([] { return count_rows(); });   // atasker's @locker decorator

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include <atasker/error.hpp>
#include <atasker/export.hpp>

namespace atasker {

/// How a Locker behaves.
struct LockerOptions {
    std::string mod = "main";                             ///< names the lock in messages (atasker's mod)
    std::chrono::nanoseconds timeout = std::chrono::seconds(5);  ///< how long lock() waits
    /// Re-entrant (atasker's relative=True: an RLock): the thread holding it
    /// may lock again. False: a plain timed mutex.
    bool relative = true;
    /// Runs on the thread that timed out, before TimeoutError is thrown, with
    /// what it tried to lock for. Empty: a critical log line
    /// "<mod>/<what> locking broken". Exceptions it throws are logged.
    std::function<void(std::string_view what)> on_timeout{};
};

/// A lock with a timeout whose expiry is reported as broken locking. The
/// lock is thread-safe; a Guard belongs to the thread that took it.
class ATASKER_API Locker {
public:
    /// Holds the lock until destroyed (or unlock()). Movable, not copyable.
    class ATASKER_API Guard {
    public:
        /// Takes over what `o` holds; `o` then holds nothing.
        Guard(Guard&& o) noexcept : locker_(std::exchange(o.locker_, nullptr)) {}
        /// Releases what this guard holds, then takes over what `o` holds.
        Guard& operator=(Guard&& o) noexcept {
            if (this != &o) {
                unlock();
                locker_ = std::exchange(o.locker_, nullptr);
            }
            return *this;
        }
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;
        ~Guard() { unlock(); }

        /// Releases the lock early; does nothing when already released.
        void unlock() noexcept {
            if (locker_ != nullptr) std::exchange(locker_, nullptr)->unlock();
        }
        /// True while this guard holds the lock.
        [[nodiscard]] bool owns_lock() const noexcept { return locker_ != nullptr; }

    private:
        friend class Locker;
        explicit Guard(Locker* locker) noexcept : locker_(locker) {}
        Locker* locker_;
    };

    /// An unlocked lock with these options.
    explicit Locker(LockerOptions options = {});
    Locker(const Locker&) = delete;
    Locker& operator=(const Locker&) = delete;
    ~Locker();

    /// Takes the lock, waiting up to the timeout. `what` names the caller in
    /// messages. \returns a guard holding it. \throws TimeoutError after
    /// calling on_timeout when the timeout passed.
    [[nodiscard]] Guard lock(std::string_view what = {});

    /// Runs `fn()` holding the lock (atasker's decorator). \returns its
    /// result. \throws TimeoutError as lock() does; what fn throws.
    template <class F>
    decltype(auto) run(F&& fn, std::string_view what = {}) {
        auto guard = lock(what);
        return std::forward<F>(fn)();
    }

    /// The options it was made with.
    [[nodiscard]] const LockerOptions& options() const noexcept { return options_; }

private:
    void unlock() noexcept;

    LockerOptions options_;
    // A timed lock built on a mutex and a condition variable: std::timed_mutex
    // would do, but ThreadSanitizer (gcc 12) does not follow its timed lock.
    std::mutex mutex_;
    std::condition_variable released_;
    std::thread::id owner_{};
    std::size_t depth_ = 0;  // > 1 only for a relative (re-entrant) locker
};

}  // namespace atasker
