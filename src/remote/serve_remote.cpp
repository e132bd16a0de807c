// at::serve_remote(): a worker host. Three threads, each with its own
// connection:
//
// * the calling thread fetches: as many entries as it has room for (its
//   worker processes and the prefetch), most urgent stream first
//   (remote_scripts::fetch), taking over those of silent workers first when
//   a quarter of the lease passed since it last looked; when there is
//   nothing to run it waits in XREAD BLOCK on the streams and on its own
//   wake stream, after the ids the fetch returned, so nothing added
//   meanwhile is missed: for a quarter of the lease while any worker holds
//   a task (then it looks again), else until woken; the next fetch is sent
//   behind the wait, so the server runs it as soon as the wait ends. Each
//   entry becomes a RemoteRun in the local process pool, held in HeldTasks
//   until completed.
// * the completer (completer.hpp) completes what ended, reports on what
//   runs and renews the leases of what the worker holds.
// * the signal watcher turns SIGTERM / SIGINT into a stop: nothing more is
//   fetched, and the wake stream ends the fetcher's wait.
//
// The worker's name is host:pid: its consumer name in the group.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#include <atasker/error.hpp>
#include <atasker/log.hpp>
#include <atasker/pool_options.hpp>
#include <atasker/remote.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task_info.hpp>
#include <atasker/task_options.hpp>

#include "process/mp_registry.hpp"
#include "remote/completer.hpp"
#include "remote/held_tasks.hpp"
#include "remote/reconnect.hpp"
#include "remote/redis_connection.hpp"
#include "remote/registry_check.hpp"
#include "remote/remote_keys.hpp"
#include "remote/remote_run.hpp"
#include "remote/remote_scripts.hpp"
#include "remote/stop_signals.hpp"
#include "sync/saturating.hpp"
#include "sync/system_error.hpp"

namespace atasker {
namespace {

using detail::RedisConnection;
using detail::RedisValue;
using detail::RemoteKeys;
using detail::EntryKey;
using detail::Held;
using detail::RemoteOutcome;

std::string worker_name() { return fmt::format("{}:{}", detail::this_host(), ::getpid()); }

/// `o`, once its lease and max_deliveries are known to be usable.
const ServeRemoteOptions& checked(const ServeRemoteOptions& o) {
    if (o.lease < std::chrono::milliseconds(100))
        throw Error(fmt::format("a remote worker's lease of {} ms is too short to renew in time; give it at least "
                                "100 ms (30 s by default)",
                                o.lease.count()));
    if (o.max_deliveries == 0)
        throw Error("max_deliveries 0 would fail every task before it ran; give it at least 1 (3 by default)");
    return o;
}

class Worker {
    using Clock = detail::HeldTasks::Clock;

public:
    Worker(const ServeRemoteOptions& o)
        : url_(detail::parse_redis_url(checked(o).url)),
          keys_(o.ns),
          lease_(o.lease),
          max_deliveries_(std::to_string(o.max_deliveries)),
          name_(worker_name()),
          processes_(o.pool_size != 0 ? o.pool_size : std::max(1U, std::thread::hardware_concurrency())),
          capacity_(detail::saturating_add(processes_, o.prefetch)),
          fetch_(url_),
          wake_conn_(url_),
          wake_key_(keys_.wake(name_)),
          completer_(held_, url_, keys_, name_, lease_, processes_) {}

    int serve() {
        // The wake stream's first entry: the fetcher waits after it.
        std::string wake_last = join_namespace();

        // Before any thread starts: they inherit the signals blocked.
        detail::StopSignals signals;
        TaskSupervisor& local = TaskSupervisor::instance();
        PoolOptions pool;
        pool.pool_size = processes_;
        local.set_mp_pool(pool);
        const bool started_here = !local.is_active();
        local.start();

        std::thread completer = detail::start_thread("serve_remote completer", [this] { completer_.run(); });
        std::thread watcher;
        try {
            watcher = detail::start_thread("serve_remote signal watcher", [this, &signals] {
                if (signals.wait()) request_stop();
            });
        } catch (...) {
            end_completer(completer);
            throw;
        }
        log(LogLevel::info,
            "serve_remote: worker {} serves namespace '{}' at {} with {} worker processes and a prefetch of {}",
            name_, keys_.ns(), url_.server(), processes_, capacity_ - processes_);

        std::exception_ptr failed;
        try {
            fetch_loop(wake_last);
        } catch (...) {
            failed = std::current_exception();
        }
        {
            // Whatever ended the loop, what was fetched finishes and is answered.
            std::unique_lock held(held_.m);
            held_.stopping = true;
            held_.room.wait(held, [this] { return held_.entries.empty(); });
        }
        end_completer(completer);
        signals.quit();
        watcher.join();
        try {
            (void)fetch_.command({"DEL", wake_key_});
        } catch (...) {  // the server is gone: the key expires with it
        }
        if (started_here) local.stop();
        if (failed) std::rethrow_exception(failed);
        log(LogLevel::info, "serve_remote: worker {} stopped", name_);
        return 0;
    }

private:
    /// On the fetcher's connection: checks this binary's MpTasks against the
    /// namespace's, makes the consumer groups, starts this worker's wake
    /// stream; its first entry's id. At start, and again after a reconnection
    /// (the server may have come back empty).
    std::string join_namespace() {
        detail::check_registry(fetch_, keys_, url_.server());
        std::vector<std::string_view> args{"EVAL", detail::remote_scripts::create_groups, "4"};
        for (const std::string& q : keys_.queues()) args.emplace_back(q);
        args.emplace_back(detail::remote_group);
        (void)fetch_.command(args);
        return std::string(fetch_.command({"XADD", wake_key_, "*", "worker", name_}).str());
    }

    /// Connects `conn` (the `role`'s) again after it was lost, then runs
    /// `then()`; false once the worker stops (detail::reconnect()).
    template <class Then>
    bool reconnect(RedisConnection& conn, std::string_view role, Then then) {
        return detail::reconnect(
            conn, held_.m, held_.work, [this] { return held_.stopping; }, then,
            fmt::format("serve_remote: worker {}'s {}", name_, role));
    }

    void request_stop() noexcept {
        {
            std::lock_guard held(held_.m);
            held_.stopping = true;
        }
        held_.work.notify_all();
        held_.room.notify_all();
        try {
            if (wake_conn_.broken()) wake_conn_.reconnect();
            (void)wake_conn_.command({"XADD", wake_key_, "*", "stop", "1"});
        } catch (const std::exception& e) {
            // The fetcher's own wait fails with the server as well.
            log(LogLevel::warning, "serve_remote: could not wake the fetcher: {}", e.what());
            fetch_.interrupt();
        }
    }

    void fetch_loop(std::string wake_last) {
        auto swept = Clock::now() - lease_;  // the first fetch looks for silent workers' tasks
        for (;;) {
            {
                std::unique_lock held(held_.m);
                held_.room.wait(held, [this] { return held_.stopping || held_.entries.size() < capacity_; });
                if (held_.stopping) return;
            }
            try {
                fetch_round(wake_last, swept);
            } catch (const std::exception&) {
                if (!fetch_.broken()) throw;
                // A server that came back may have lost everything: the
                // namespace is joined again, and silent workers' tasks are
                // looked for at once.
                if (!reconnect(fetch_, "fetcher", [&] { wake_last = join_namespace(); })) return;
                swept = Clock::now() - lease_;
            }
        }
    }

    /// One fetch into the room there is, or, when there is nothing to fetch,
    /// one wait for an entry added after the ids read, or for the wake
    /// stream (while workers hold tasks, only until it is time to look for
    /// silent ones again), with the next fetch sent behind the wait: the
    /// server runs it as soon as the wait ends, with no round trip between.
    /// Room only grows meanwhile (only the fetcher takes places).
    void fetch_round(std::string& wake_last, Clock::time_point& swept) {
        std::size_t room = 0;
        {
            std::lock_guard held(held_.m);
            room = capacity_ - held_.entries.size();
        }
        const auto& queues = keys_.queues();
        const std::string count = std::to_string(room);
        const std::string lease_ms = std::to_string(lease_.count());
        const std::string prefix = keys_.prefix();
        const auto now = Clock::now();
        const bool sweep = now - swept >= lease_ / 4;
        if (sweep) swept = now;
        std::vector<std::string_view> args{"EVAL", detail::remote_scripts::fetch, "4"};
        for (const std::string& q : queues) args.emplace_back(q);
        const std::size_t sweep_arg = args.size() + 3;
        args.insert(args.end(), {detail::remote_group, name_, count, sweep ? "1" : "0", lease_ms, max_deliveries_,
                                 prefix, detail::record_seconds});
        const detail::RedisReply reply = fetch_.command(args);
        if (reply[0].integer() == 0) {
            args[sweep_arg] = "0";  // the fetch behind the wait does not sweep
            fetch_.append(wait_args(reply, wake_last));
            fetch_.append(args);
            const detail::RedisReply woke = fetch_.read_reply();
            const detail::RedisReply after = fetch_.read_reply();
            for (std::size_t i = 0; !woke.is_nil() && i < woke.size(); ++i) {
                const RedisValue stream = woke[i];
                if (stream[0].str() == wake_key_ && stream[1].size() != 0)
                    wake_last = std::string(stream[1][stream[1].size() - 1][0].str());
            }
            start_all(after);
            return;
        }
        start_all(reply);
    }

    /// The XREAD a fetch that found nothing (`reply`) waits in: for an entry
    /// added to a stream after the ids it read, or to the wake stream after
    /// `wake_last`.
    std::vector<std::string_view> wait_args(const detail::RedisReply& reply, const std::string& wake_last) {
        const RedisValue last = reply[1];
        const bool held_anywhere = reply[2].integer() > 0;
        wait_block_ = held_anywhere ? std::to_string(std::max<long long>(1, lease_.count() / 4)) : "0";
        std::vector<std::string_view> xread{"XREAD", "COUNT", "1", "BLOCK", wait_block_, "STREAMS"};
        for (const std::string& q : keys_.queues()) xread.emplace_back(q);
        xread.emplace_back(wake_key_);
        for (std::size_t i = 0; i < last.size(); ++i) xread.emplace_back(last[i].str());
        xread.emplace_back(wake_last);
        return xread;
    }

    /// Starts the entries a fetch returned, if any.
    void start_all(const detail::RedisReply& fetched) {
        if (fetched[0].integer() != 1) return;
        const RedisValue entries = fetched[1];
        for (std::size_t i = 0; i < entries.size(); ++i) start(entries[i]);
    }

    /// Runs one fetched entry in the local pool, or answers it at once.
    void start(const RedisValue& entry) {
        RemoteOutcome head;
        head.rank = static_cast<int>(entry[0].integer()) - 1;
        head.entry = std::string(entry[1].str());
        const RedisValue fields = entry[2];
        head.client = std::string(fields.field("client"));
        head.id = std::string(fields.field("id"));
        const std::string name(fields.field("name"));
        head.deliveries = entry[3].integer();
        head.keep = std::string(fields.field("keep"));
        if (head.keep.empty()) head.keep = detail::record_seconds;
        const std::string_view timeout_text = fields.field("timeout");
        std::int64_t timeout_ns = 0;
        (void)std::from_chars(timeout_text.data(), timeout_text.data() + timeout_text.size(), timeout_ns);
        const EntryKey key{head.rank, head.entry};
        {
            std::lock_guard held(held_.m);
            const bool first = held_.entries.empty();
            // Its own entry, taken back by a sweep after a renewal came late:
            // it runs here already.
            if (!held_.entries.emplace(key, Held{.client = head.client, .id = head.id, .deliveries = head.deliveries})
                     .second)
                return;
            if (first) {
                held_.renew_at = Clock::now() + lease_ / 4;
                held_.report_at = Clock::now() + completer_.report_period();
                if (held_.completer_idle) held_.work.notify_all();  // it renews from now on
            }
        }
        if (head.deliveries > 1)
            log(LogLevel::info, "serve_remote: worker {} takes over task {} of {} from a worker silent past its lease "
                                "(delivery {})",
                name_, head.id, head.client, head.deliveries);
        const std::optional<std::uint32_t> index = detail::find_mp_task(name);
        if (!index) {
            head.outcome = "error";
            head.value = fmt::format("no MpTask named '{}' is registered in the worker {}; build workers and clients "
                                     "from the same MpTask definitions",
                                     name, name_);
            on_done(this, std::move(head));
            return;
        }
        RemoteOutcome copy = head;  // the task owns `head` once put
        auto* run = new detail::RemoteRun(*index, std::string(fields.field("args")),
                                          std::chrono::nanoseconds(timeout_ns), std::move(head), &on_started, &on_done,
                                          this);
        TaskOptions options;
        options.name = name;
        options.priority = priority_of_rank(copy.rank);
        options.timeout = std::chrono::nanoseconds(timeout_ns);
        try {
            // put_task takes the reference, also when it throws.
            const TaskId local = TaskSupervisor::instance().put_task(run, options);
            std::lock_guard held(held_.m);
            if (const auto it = held_.entries.find(key); it != held_.entries.end()) it->second.local = local;
        } catch (const std::exception& e) {
            copy.outcome = "error";
            copy.value = fmt::format("the worker {} could not run the task: {}", name_, e.what());
            on_done(this, std::move(copy));
        }
    }

    /// Its client is told at the next report, if it still runs then: a
    /// short task's completion says where it ran, with no report apart.
    static void on_started(void* self, const RemoteOutcome& head) noexcept {
        auto* me = static_cast<Worker*>(self);
        std::lock_guard held(me->held_.m);
        if (const auto it = me->held_.entries.find(EntryKey{head.rank, head.entry}); it != me->held_.entries.end())
            it->second.started = true;
    }

    static void on_done(void* self, RemoteOutcome&& outcome) noexcept {
        auto* me = static_cast<Worker*>(self);
        if (me->completer_.complete_here(outcome)) return;
        std::lock_guard held(me->held_.m);
        const EntryKey key{outcome.rank, outcome.entry};
        try {
            me->held_.done.push_back(std::move(outcome));
            if (const auto it = me->held_.entries.find(key); it != me->held_.entries.end()) it->second.completing = true;
            me->held_.work.notify_all();
        } catch (...) {  // no memory: the entry stays pending (another worker takes it over), its slot is freed
            me->held_.entries.erase(key);
            me->held_.room.notify_all();
        }
    }

    void end_completer(std::thread& completer) noexcept {
        {
            std::lock_guard held(held_.m);
            held_.completer_quit = true;
        }
        held_.work.notify_all();
        completer.join();
    }

    detail::RedisUrl url_;
    RemoteKeys keys_;
    std::chrono::milliseconds lease_;
    std::string max_deliveries_;
    std::string name_;
    std::size_t processes_;      // its local process pool's
    std::size_t capacity_;       // the entries it holds at most: processes_ and the prefetch
    RedisConnection fetch_;      // the fetcher's
    RedisConnection wake_conn_;  // the signal watcher's
    std::string wake_key_;
    std::string wait_block_;  // the fetcher's: the milliseconds its XREAD waits
    detail::HeldTasks held_;
    detail::Completer completer_;
};

}  // namespace

int serve_remote(const ServeRemoteOptions& options) {
    Worker worker(options);
    return worker.serve();
}

}  // namespace atasker
