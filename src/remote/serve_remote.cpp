// at::serve_remote(): a worker host. Three threads, each with its own
// connection:
//
// * the calling thread fetches: as many entries as it has room for (its
//   worker processes and the prefetch),
//   most urgent stream first (remote_scripts::fetch), taking over those of
//   silent workers first when a quarter of the lease passed since it last
//   looked; when there is nothing to run it waits in XREAD BLOCK on the
//   streams and on its own wake stream, after the ids the fetch returned,
//   so nothing added meanwhile is missed: for a quarter of the lease while
//   any worker holds a task (then it looks again), else until woken; the
//   next fetch is sent behind the wait, so the server runs it as soon as
//   the wait ends. Each entry becomes a RemoteRun in the local process pool.
// * the completer sends each outcome with remote_scripts::complete, in
//   batches, and frees its place in the pool; while it has nothing queued
//   and no task here waits for a worker process, the thread that ended a
//   task completes it itself (complete_here), a wake-up sooner. Every second while tasks
//   run, it tells their clients where each started (once) and its progress
//   when it changed; a task that ended by then is not reported apart (its
//   completion says where it ran). Every quarter of the lease
//   while the worker holds entries, it renews them (remote_scripts::renew);
//   a task whose entry another worker took over meanwhile, or whose client
//   canceled it, is canceled here (the result of the first is dropped).
// * the signal watcher turns SIGTERM / SIGINT into a stop: nothing more is
//   fetched, and the wake stream ends the fetcher's wait.
//
// The worker's name is host:pid: its consumer name in the group.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <cxxabi.h>
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
#include "remote/reconnect.hpp"
#include "remote/redis_connection.hpp"
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

/// A signature for people: the demangled function type, e.g. "int (int)".
std::string readable(const std::string& mangled) {
    int status = 0;
    const std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status),
                                                      &std::free);
    return status == 0 && name ? std::string(name.get()) : mangled;
}

/// Refuses to serve a namespace whose MpTasks (names and signatures) differ
/// from this binary's.
void check_registry(RedisConnection& c, const RemoteKeys& keys, const std::string& where) {
    std::map<std::string, std::string> mine;  // name -> mangled signature
    for (std::uint32_t i = 0; i < detail::mp_task_count(); ++i) {
        const detail::MpRegistryEntry* task = detail::find_mp_task(i);
        mine.emplace(task->name, task->signature);
    }
    if (mine.empty())
        throw Error("this program registers no at::MpTask, so it has nothing to serve; define the clients' MpTasks at "
                    "namespace scope in the worker's binary");
    const std::string key = keys.tasks();
    std::vector<std::string_view> args{"EVAL", detail::remote_scripts::registry, "1", key};
    for (const auto& [name, signature] : mine) args.insert(args.end(), {name, signature});
    const detail::RedisReply stored_reply = c.command(args);
    std::map<std::string, std::string> stored;
    for (std::size_t i = 0; i + 1 < stored_reply.size(); i += 2)
        stored.emplace(stored_reply[i].str(), stored_reply[i + 1].str());
    std::vector<std::string> missing;
    std::vector<std::string> extra;
    std::vector<std::string> changed;
    for (const auto& [name, signature] : stored)
        if (!mine.contains(name)) missing.push_back(name);
    for (const auto& [name, signature] : mine) {
        const auto it = stored.find(name);
        if (it == stored.end()) {
            extra.push_back(name);
        } else if (it->second != signature) {
            changed.push_back(fmt::format("{} is {} in this worker, {} in the namespace", name, readable(signature),
                                          readable(it->second)));
        }
    }
    std::vector<std::string> differences;
    if (!missing.empty()) differences.push_back(fmt::format("not in this worker: {}", fmt::join(missing, ", ")));
    if (!extra.empty()) differences.push_back(fmt::format("only in this worker: {}", fmt::join(extra, ", ")));
    if (!changed.empty()) differences.push_back(fmt::format("another signature: {}", fmt::join(changed, ", ")));
    if (differences.empty()) return;
    throw Error(fmt::format("this worker's MpTasks differ from those of namespace '{}' at {} ({}); build workers and "
                            "clients from the same MpTask definitions, or, with every worker of the namespace "
                            "stopped, delete the key {} to start it afresh",
                            keys.ns(), where, fmt::join(differences, "; "), key));
}

class Worker {
    using Clock = std::chrono::steady_clock;
    /// An entry this worker holds: its priority rank and its id in that stream.
    using EntryKey = std::pair<int, std::string>;
    struct Held {
        std::string client;        // who put it
        std::string id;            // its id there
        long long deliveries = 1;  // workers it was given to, this one included
        TaskId local = 0;          // its task in the local pool; 0 until put (or when answered at once)
        float progress = 0.0F;     // as last reported to its client
        bool started = false;      // it runs in the local pool
        bool start_reported = false;  // its client was told where it runs
        bool lost = false;         // another worker took it over: no more renewals
        bool canceled = false;     // its client canceled it: stopped here
        bool completing = false;   // it ended: being completed, no more renewals or reports
    };
    /// What a renewal sends for one entry.
    struct Renewal {
        EntryKey key;
        std::string cancel_key;  // exists once its client canceled it
    };
    /// What the completer tells a client about a task still running: it
    /// started here, or its progress.
    struct Report {
        std::string client;
        std::string id;
        long long deliveries = 1;
        std::optional<float> progress;  // none: it started
    };

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
          complete_(url_),
          direct_(url_),
          wake_conn_(url_),
          wake_key_(keys_.wake(name_)) {}

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

        std::thread completer = detail::start_thread("serve_remote completer", [this] { complete_loop(); });
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
            std::unique_lock held(m_);
            stopping_ = true;
            cv_.wait(held, [this] { return entries_.empty(); });
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
        check_registry(fetch_, keys_, url_.server());
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
            conn, m_, cv_, [this] { return stopping_; }, then, fmt::format("serve_remote: worker {}'s {}", name_, role));
    }

    void request_stop() noexcept {
        {
            std::lock_guard held(m_);
            stopping_ = true;
        }
        cv_.notify_all();
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
                std::unique_lock held(m_);
                cv_.wait(held, [this] { return stopping_ || entries_.size() < capacity_; });
                if (stopping_) return;
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
            std::lock_guard held(m_);
            room = capacity_ - entries_.size();
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
            std::lock_guard held(m_);
            const bool first = entries_.empty();
            // Its own entry, taken back by a sweep after a renewal came late:
            // it runs here already.
            if (!entries_.emplace(key, Held{.client = head.client, .id = head.id, .deliveries = head.deliveries})
                     .second)
                return;
            if (first) {
                renew_at_ = Clock::now() + lease_ / 4;
                report_at_ = Clock::now() + report_period();
                cv_.notify_all();  // the completer renews from now on
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
            std::lock_guard held(m_);
            if (const auto it = entries_.find(key); it != entries_.end()) it->second.local = local;
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
        std::lock_guard held(me->m_);
        if (const auto it = me->entries_.find(EntryKey{head.rank, head.entry}); it != me->entries_.end())
            it->second.started = true;
    }

    static void on_done(void* self, RemoteOutcome&& outcome) noexcept {
        auto* me = static_cast<Worker*>(self);
        if (me->complete_here(outcome)) return;
        std::lock_guard held(me->m_);
        const EntryKey key{outcome.rank, outcome.entry};
        try {
            me->done_.push_back(std::move(outcome));
            if (const auto it = me->entries_.find(key); it != me->entries_.end()) it->second.completing = true;
        } catch (...) {  // no memory: the entry stays pending (another worker takes it over), its slot is freed
            me->entries_.erase(key);
        }
        me->cv_.notify_all();
    }

    /// On the thread that ended the task: completes it on a connection of
    /// its own, a wake-up sooner than the completer would, when the completer
    /// has nothing queued and no task held here waits for a worker process
    /// (this thread would keep it waiting a round trip). False: the completer
    /// completes it (also when the connection was lost: it connects again).
    bool complete_here(const RemoteOutcome& o) noexcept {
        std::unique_lock direct(direct_m_, std::try_to_lock);
        if (!direct.owns_lock() || direct_.broken()) return false;
        const EntryKey key{o.rank, o.entry};
        {
            std::lock_guard held(m_);
            if (!done_.empty() || entries_.size() > processes_ || completer_quit_) return false;
            if (const auto it = entries_.find(key); it != entries_.end()) it->second.completing = true;
        }
        try {
            append_complete(direct_, o);
            read_completed(direct_, o);
        } catch (const std::exception& e) {
            if (direct_.broken()) return false;
            log(LogLevel::error, "serve_remote: could not complete task {} of {}: {}", o.id, o.client, e.what());
        }
        direct.unlock();  // before the entry goes: serve() may return once none is left
        std::lock_guard held(m_);
        entries_.erase(key);
        cv_.notify_all();
        return true;
    }

    /// How often the completer reports the progress of running tasks.
    [[nodiscard]] Clock::duration report_period() const noexcept {
        return std::min<Clock::duration>(std::chrono::seconds(1), lease_ / 4);
    }

    void complete_loop() noexcept {
        std::vector<RemoteOutcome> batch;
        std::vector<Renewal> renewing;
        std::vector<Report> reports;
        std::vector<std::pair<EntryKey, TaskId>> running;  // to look at the progress of
        for (;;) {
            {
                std::unique_lock held(m_);
                for (;;) {
                    if (!done_.empty() || completer_quit_) break;
                    if (entries_.empty()) {
                        cv_.wait(held);
                    } else if (Clock::now() >= std::min(renew_at_, report_at_)) {
                        break;
                    } else {
                        cv_.wait_until(held, std::min(renew_at_, report_at_));
                    }
                }
                if (done_.empty() && completer_quit_) return;
                batch.assign(std::make_move_iterator(done_.begin()), std::make_move_iterator(done_.end()));
                done_.clear();
                collect_reports(reports, running);
                renewing.clear();
                if (!entries_.empty() && Clock::now() >= renew_at_) {
                    renew_at_ = Clock::now() + lease_ / 4;
                    for (const auto& [key, h] : entries_)
                        if (!h.lost && !h.completing) renewing.push_back(Renewal{key, keys_.cancel(h.client, h.id)});
                }
            }
            report_progress(running, reports);
            if (!reports.empty()) send_reports(reports);
            if (!renewing.empty()) renew(renewing);
            // What a lost connection left unsent goes once it is back.
            std::size_t sent = 0;
            while (!complete_.broken() || reconnect(complete_, "completer", [] {})) {
                sent += send(batch, sent);
                if (sent == batch.size()) break;
            }
            if (sent < batch.size())
                log(LogLevel::error, "serve_remote: worker {} stops while redis at {} is out of reach: {} tasks it ran "
                                     "are not completed there and will run again on the worker that takes them over",
                    name_, url_.server(), batch.size() - sent);
            if (!complete_.broken()) reconnect_direct();
            if (batch.empty()) continue;
            {
                std::lock_guard held(m_);
                for (const RemoteOutcome& o : batch) entries_.erase(EntryKey{o.rank, o.entry});
            }
            cv_.notify_all();
            batch.clear();
        }
    }

    /// Connects complete_here()'s connection again after it was lost, once
    /// the completer's own works; tried again after the next batch.
    void reconnect_direct() noexcept {
        std::lock_guard direct(direct_m_);
        if (!direct_.broken()) return;
        try {
            direct_.reconnect();
        } catch (const std::exception&) {  // until then, the completer completes every task
        }
    }

    /// Under m_, when it is time to report: where tasks started since the
    /// last report run (not for one that ended: its completion says where it
    /// ran), and the running tasks whose progress to look at.
    void collect_reports(std::vector<Report>& reports, std::vector<std::pair<EntryKey, TaskId>>& running) noexcept {
        reports.clear();
        running.clear();
        if (entries_.empty() || Clock::now() < report_at_) return;
        report_at_ = Clock::now() + report_period();
        try {
            for (auto& [key, h] : entries_) {
                if (!h.started || h.lost || h.canceled || h.completing) continue;
                if (!h.start_reported) {
                    reports.push_back(Report{h.client, h.id, h.deliveries, {}});
                    h.start_reported = true;
                }
                if (h.local != 0) running.emplace_back(key, h.local);
            }
        } catch (...) {  // no memory: these reports are skipped
        }
    }

    /// Without m_: adds a report for each task of `running` whose progress
    /// changed since its client was last told.
    void report_progress(const std::vector<std::pair<EntryKey, TaskId>>& running,
                         std::vector<Report>& reports) noexcept {
        for (const auto& [key, local] : running) {
            const std::optional<TaskInfo> info = TaskSupervisor::instance().get_task_info(local);
            if (!info || info->status != TaskStatus::started) continue;
            const auto progress = static_cast<float>(info->progress);
            std::lock_guard held(m_);
            const auto it = entries_.find(key);
            if (it == entries_.end() || it->second.progress == progress) continue;
            it->second.progress = progress;
            try {
                reports.push_back(Report{it->second.client, it->second.id, it->second.deliveries, progress});
            } catch (...) {  // no memory: reported next time
                it->second.progress = -1.0F;
            }
        }
    }

    /// Tells clients where their tasks started and how far they are, in one
    /// round trip, on their reply streams; best effort (a lost report only
    /// leaves a client's record behind).
    void send_reports(const std::vector<Report>& reports) noexcept {
        std::size_t appended = 0;
        try {
            for (const Report& r : reports) {
                const std::string deliveries = std::to_string(r.deliveries);
                if (r.progress) {
                    const std::string progress = fmt::format("{}", *r.progress);
                    complete_.append({"XADD", keys_.reply(r.client), "*", "id", r.id, "event", "progress", "progress",
                                      progress});
                } else {
                    complete_.append({"XADD", keys_.reply(r.client), "*", "id", r.id, "event", "started", "worker",
                                      name_, "attempts", deliveries});
                }
                ++appended;
            }
        } catch (const std::exception& e) {
            log(LogLevel::warning, "serve_remote: could not report on {} tasks to their clients: {}",
                reports.size() - appended, e.what());
        }
        for (std::size_t i = 0; i < appended; ++i) {
            try {
                (void)complete_.read_reply();
            } catch (const std::exception& e) {
                log(LogLevel::warning, "serve_remote: could not report on task {} to {}: {}", reports[i].id,
                    reports[i].client, e.what());
                if (complete_.broken()) return;
            }
        }
    }

    /// Renews the lease of the entries `renewing`. A task whose entry is no
    /// longer this worker's (it was silent past the lease: frozen, or cut
    /// off) runs elsewhere now: canceled here, its result is dropped. One
    /// its client canceled is canceled here, and completed as canceled.
    void renew(const std::vector<Renewal>& renewing) noexcept {
        std::vector<std::string> indexes;
        indexes.reserve(renewing.size());
        for (const Renewal& r : renewing) indexes.push_back(std::to_string(r.key.first + 1));
        std::vector<std::string_view> args{"EVAL", detail::remote_scripts::renew, "4"};
        for (const std::string& q : keys_.queues()) args.emplace_back(q);
        args.insert(args.end(), {detail::remote_group, name_});
        for (std::size_t i = 0; i < renewing.size(); ++i)
            args.insert(args.end(), {indexes[i], renewing[i].key.second, renewing[i].cancel_key});
        std::vector<const EntryKey*> lost;
        std::vector<const EntryKey*> canceled;
        try {
            const detail::RedisReply reply = complete_.command(args);
            for (const auto& [into, list] : {std::pair{&lost, reply[0]}, std::pair{&canceled, reply[1]}})
                for (std::size_t i = 0; i < list.size(); ++i)
                    into->push_back(&renewing.at(static_cast<std::size_t>(list[i].integer())).key);
        } catch (const std::exception& e) {
            log(LogLevel::error, "serve_remote: could not renew the lease of {} tasks: {}", renewing.size(), e.what());
            return;
        }
        for (const EntryKey* key : lost)
            if (const std::optional<TaskId> local = mark(*key, &Held::lost)) {
                log(LogLevel::warning, "serve_remote: worker {} was silent past its lease and another worker took "
                                       "over entry {}; its run here is canceled and its result will be dropped",
                    name_, key->second);
                if (*local != 0) (void)TaskSupervisor::instance().cancel_task(*local);
            }
        for (const EntryKey* key : canceled)
            if (const std::optional<TaskId> local = mark(*key, &Held::canceled); local && *local != 0) {
                log(LogLevel::info, "serve_remote: the client of entry {} canceled it: its run here is stopped",
                    key->second);
                (void)TaskSupervisor::instance().cancel_task(*local);
            }
    }

    /// Sets `flag` of the held entry `key` (once); its local task (0 while
    /// it has none), or nothing when the entry is gone or being completed
    /// (a renewal that raced its completion), or the flag was set already.
    std::optional<TaskId> mark(const EntryKey& key, bool Held::*flag) noexcept {
        std::lock_guard held(m_);
        const auto it = entries_.find(key);
        if (it == entries_.end() || it->second.completing || it->second.*flag) return std::nullopt;
        it->second.*flag = true;
        return it->second.local;
    }

    /// Appends the completion of `o` to `conn`'s pipeline (remote_scripts::complete).
    void append_complete(RedisConnection& conn, const RemoteOutcome& o) {
        const std::string reply_key = keys_.reply(o.client);
        const std::string task_key = keys_.task(o.client, o.id);
        const std::string deliveries = std::to_string(o.deliveries);
        conn.append({"EVAL", detail::remote_scripts::complete, "3", keys_.queue(o.rank), reply_key, task_key,
                     detail::remote_group, o.entry, name_, o.id, o.outcome, o.value, o.type, detail::record_seconds,
                     name_, deliveries, o.keep});
    }

    /// Reads the reply of the completion of `o` appended to `conn`; a result
    /// dropped (the entry is no longer this worker's) is logged. \throws
    /// Error as RedisConnection::read_reply().
    void read_completed(RedisConnection& conn, const RemoteOutcome& o) {
        if (conn.read_reply().integer() == 0)
            log(LogLevel::warning, "serve_remote: the result of task {} of {} is dropped: its entry is no longer this "
                                   "worker's",
                o.id, o.client);
    }

    /// Completes `batch` from `from` on in one round trip; a task the server
    /// refused is logged (its entry stays pending in its stream). How many
    /// were answered: all of them unless the connection was lost.
    std::size_t send(const std::vector<RemoteOutcome>& batch, std::size_t from) noexcept {
        std::size_t appended = 0;
        try {
            for (std::size_t i = from; i < batch.size(); ++i) {
                append_complete(complete_, batch[i]);
                ++appended;
            }
        } catch (const std::exception& e) {
            if (complete_.broken()) return 0;
            log(LogLevel::error, "serve_remote: could not complete {} tasks: {}", batch.size() - from - appended,
                e.what());
        }
        for (std::size_t i = 0; i < appended; ++i) {
            const RemoteOutcome& o = batch[from + i];
            try {
                read_completed(complete_, o);
            } catch (const std::exception& e) {
                if (complete_.broken()) return i;
                log(LogLevel::error, "serve_remote: could not complete task {} of {}: {}", o.id, o.client, e.what());
            }
        }
        return batch.size() - from;
    }

    void end_completer(std::thread& completer) noexcept {
        {
            std::lock_guard held(m_);
            completer_quit_ = true;
        }
        cv_.notify_all();
        completer.join();
    }

    detail::RedisUrl url_;
    RemoteKeys keys_;
    std::chrono::milliseconds lease_;
    std::string max_deliveries_;
    std::string name_;
    std::size_t processes_;  // its local process pool's
    std::size_t capacity_;   // the entries it holds at most: processes_ and the prefetch
    RedisConnection fetch_;      // the fetcher's
    RedisConnection complete_;   // the completer's
    std::mutex direct_m_;        // held while a thread that ended a task completes it on direct_
    RedisConnection direct_;     // complete_here()'s
    RedisConnection wake_conn_;  // the signal watcher's
    std::string wake_key_;
    std::string wait_block_;  // the fetcher's: the milliseconds its XREAD waits

    std::mutex m_;
    std::condition_variable cv_;
    std::map<EntryKey, Held> entries_;  // fetched and not yet completed: places taken
    Clock::time_point renew_at_;        // while entries_ is not empty: when to renew them
    Clock::time_point report_at_;       // while entries_ is not empty: when to report their progress
    bool stopping_ = false;
    bool completer_quit_ = false;
    std::deque<RemoteOutcome> done_;
};

}  // namespace

int serve_remote(const ServeRemoteOptions& options) {
    Worker worker(options);
    return worker.serve();
}

}  // namespace atasker
