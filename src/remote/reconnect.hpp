#pragma once
// reconnect(): how a thread of the remote lane (a client's sender or reader,
// a worker's fetcher or completer) gets its connection back after the
// server went away: it tries after 0.1 s, then twice as long each time, up
// to 5 s, until it connects, and gives up when its owner stops.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string_view>

#include <atasker/log.hpp>

#include "remote/redis_connection.hpp"

namespace atasker::detail {

/// Connects `conn` again after it was lost, then runs `then()` on it (what
/// a fresh server needs, which may throw as well). Waits between tries on
/// `cv` under `m`; false, with `conn` still broken, once `stop()` holds
/// there. `who` names the thread in the log: a warning when the connection
/// was lost, info once it is back, debug for each failed try.
/// \throws what `then()` throws other than on a lost connection.
template <class Stop, class Then>
bool reconnect(RedisConnection& conn, std::mutex& m, std::condition_variable& cv, Stop stop, Then then,
               std::string_view who) {
    using Clock = std::chrono::steady_clock;
    log(LogLevel::warning, "{} lost its connection to redis at {} ({}); reconnecting", who, conn.url().server(),
        conn.why_lost());
    const auto since = Clock::now();
    std::chrono::milliseconds wait{100};
    for (;;) {
        {
            std::unique_lock held(m);
            if (cv.wait_for(held, wait, stop)) return false;
        }
        try {
            conn.reconnect();
            then();
            log(LogLevel::info, "{} reconnected to redis at {} after {} ms", who, conn.url().server(),
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
            return true;
        } catch (const std::exception& e) {
            if (!conn.broken()) throw;
            log(LogLevel::debug, "{} could not reconnect to redis yet: {}", who, e.what());
        }
        wait = std::min(wait * 2, std::chrono::milliseconds(5000));
    }
}

}  // namespace atasker::detail
