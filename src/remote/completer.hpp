#pragma once
// Completer: the half of a worker host (serve_remote) that answers. Its
// thread, with a connection of its own:
//
// * completes each outcome the fetched tasks ended with
//   (remote_scripts::complete), in batches, and frees its place; while it
//   has nothing queued and no task held waits for a worker process, the
//   thread that ended a task completes it itself (complete_here(), on a
//   second connection), a wake-up sooner;
// * every second while tasks run, tells their clients where each started
//   (once) and its progress when it changed; a task that ended by then is
//   not reported apart (its completion says where it ran);
// * every quarter of the lease while the worker holds entries, renews them
//   (remote_scripts::renew): a task whose entry another worker took over
//   meanwhile, or whose client canceled it, is canceled here (the result of
//   the first is dropped).
//
// A lost connection is connected again (reconnect.hpp) and what was not
// sent goes then.

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "remote/held_tasks.hpp"
#include "remote/redis_connection.hpp"
#include "remote/remote_keys.hpp"
#include "remote/remote_run.hpp"

namespace atasker::detail {

class Completer {
public:
    using Clock = HeldTasks::Clock;

    /// Connects (twice). \throws Error as RedisConnection's constructor.
    Completer(HeldTasks& held, const RedisUrl& url, const RemoteKeys& keys, std::string name,
              std::chrono::milliseconds lease, std::size_t processes);

    /// The completer thread: until HeldTasks::completer_quit, once nothing is
    /// left to complete (or the server is out of reach at a stop).
    void run() noexcept;
    /// On the thread that ended a task: completes it at once, when the
    /// completer has nothing queued and no task held here waits for a worker
    /// process (this thread would keep it waiting a round trip). False: the
    /// completer completes it (queue it in HeldTasks::done).
    bool complete_here(const RemoteOutcome& o) noexcept;
    /// How often running tasks' progress is reported: a second, or a quarter
    /// of the lease if shorter.
    [[nodiscard]] Clock::duration report_period() const noexcept;

private:
    /// What a renewal sends for one entry.
    struct Renewal {
        EntryKey key;
        std::string cancel_key;  // exists once its client canceled it
    };
    /// What a client is told of a task still running: it started here, or its progress.
    struct Report {
        std::string client;
        std::string id;
        long long deliveries = 1;
        std::optional<float> progress;  // none: it started
    };

    /// Connects complete_here()'s connection again after it was lost, once
    /// the completer's own works; tried again after the next batch.
    void reconnect_direct() noexcept;
    /// Under the mutex, when it is time to report: where tasks started since
    /// the last report (not for one that ended: its completion says where it
    /// ran), and the running tasks whose progress to look at.
    void collect_reports(std::vector<Report>& reports, std::vector<std::pair<EntryKey, TaskId>>& running) noexcept;
    /// Without the mutex: adds a report for each task of `running` whose
    /// progress changed since its client was last told.
    void report_progress(const std::vector<std::pair<EntryKey, TaskId>>& running,
                         std::vector<Report>& reports) noexcept;
    /// Tells clients where their tasks started and how far they are, in one
    /// round trip, on their reply streams; best effort (a lost report only
    /// leaves a client's record behind).
    void send_reports(const std::vector<Report>& reports) noexcept;
    /// Renews the lease of the entries `renewing`. A task whose entry is no
    /// longer this worker's (it was silent past the lease: frozen, or cut
    /// off) runs elsewhere now: canceled here, its result is dropped. One
    /// its client canceled is canceled here, and completed as canceled.
    void renew(const std::vector<Renewal>& renewing) noexcept;
    /// Sets `flag` of the held entry `key` (once); its local task (0 while
    /// it has none), or nothing when the entry is gone or being completed
    /// (a renewal that raced its completion), or the flag was set already.
    std::optional<TaskId> mark(const EntryKey& key, bool Held::*flag) noexcept;
    /// Appends the completion of `o` to `conn`'s pipeline (remote_scripts::complete).
    void append_complete(RedisConnection& conn, const RemoteOutcome& o);
    /// Reads the reply of the completion of `o` appended to `conn`; a result
    /// dropped (the entry is no longer this worker's) is logged. \throws
    /// Error as RedisConnection::read_reply().
    void read_completed(RedisConnection& conn, const RemoteOutcome& o);
    /// Completes `batch` from `from` on in one round trip; a task the server
    /// refused is logged (its entry stays pending in its stream). How many
    /// were answered: all of them unless the connection was lost.
    std::size_t send(const std::vector<RemoteOutcome>& batch, std::size_t from) noexcept;

    HeldTasks& held_;
    const RemoteKeys& keys_;
    std::string name_;  // the worker's
    std::chrono::milliseconds lease_;
    std::size_t processes_;      // the worker's local process pool's
    RedisConnection complete_;   // the completer thread's
    std::mutex direct_m_;        // held while a thread that ended a task completes it on direct_
    RedisConnection direct_;     // complete_here()'s
};

}  // namespace atasker::detail
