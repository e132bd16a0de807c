#include "remote/completer.hpp"

#include <algorithm>
#include <exception>
#include <iterator>
#include <string_view>

#include <fmt/format.h>

#include <atasker/log.hpp>
#include <atasker/supervisor.hpp>
#include <atasker/task_info.hpp>

#include "remote/reconnect.hpp"
#include "remote/remote_scripts.hpp"

namespace atasker::detail {

Completer::Completer(HeldTasks& held, const RedisUrl& url, const RemoteKeys& keys, std::string name,
                     std::chrono::milliseconds lease, std::size_t processes)
    : held_(held),
      keys_(keys),
      name_(std::move(name)),
      lease_(lease),
      processes_(processes),
      complete_(url),
      direct_(url) {}

Completer::Clock::duration Completer::report_period() const noexcept {
    return std::min<Clock::duration>(std::chrono::seconds(1), lease_ / 4);
}

bool Completer::complete_here(const RemoteOutcome& o) noexcept {
    std::unique_lock direct(direct_m_, std::try_to_lock);
    if (!direct.owns_lock() || direct_.broken()) return false;
    const EntryKey key{o.rank, o.entry};
    {
        std::lock_guard held(held_.m);
        if (!held_.done.empty() || held_.entries.size() > processes_ || held_.completer_quit) return false;
        if (const auto it = held_.entries.find(key); it != held_.entries.end()) it->second.completing = true;
    }
    try {
        append_complete(direct_, o);
        read_completed(direct_, o);
    } catch (const std::exception& e) {
        if (direct_.broken()) return false;
        log(LogLevel::error, "serve_remote: could not complete task {} of {}: {}", o.id, o.client, e.what());
    }
    direct.unlock();  // before the entry goes: serve() may return once none is left
    std::lock_guard held(held_.m);
    held_.entries.erase(key);
    held_.room.notify_all();
    return true;
}

void Completer::run() noexcept {
    std::vector<RemoteOutcome> batch;
    std::vector<Renewal> renewing;
    std::vector<Report> reports;
    std::vector<std::pair<EntryKey, TaskId>> running;  // to look at the progress of
    for (;;) {
        {
            std::unique_lock held(held_.m);
            for (;;) {
                if (!held_.done.empty() || held_.completer_quit) break;
                if (held_.entries.empty()) {
                    held_.completer_idle = true;
                    held_.work.wait(held);
                    held_.completer_idle = false;
                } else if (Clock::now() >= std::min(held_.renew_at, held_.report_at)) {
                    break;
                } else {
                    held_.work.wait_until(held, std::min(held_.renew_at, held_.report_at));
                }
            }
            if (held_.done.empty() && held_.completer_quit) return;
            batch.assign(std::make_move_iterator(held_.done.begin()), std::make_move_iterator(held_.done.end()));
            held_.done.clear();
            collect_reports(reports, running);
            renewing.clear();
            if (!held_.entries.empty() && Clock::now() >= held_.renew_at) {
                held_.renew_at = Clock::now() + lease_ / 4;
                for (const auto& [key, h] : held_.entries)
                    if (!h.lost && !h.completing) renewing.push_back(Renewal{key, keys_.cancel(h.client, h.id)});
            }
        }
        report_progress(running, reports);
        if (!reports.empty()) send_reports(reports);
        if (!renewing.empty()) renew(renewing);
        // What a lost connection left unsent goes once it is back.
        const auto connected = [this] {
            return !complete_.broken() ||
                   reconnect(complete_, held_.m, held_.work, [this] { return held_.stopping; }, [] {},
                             fmt::format("serve_remote: worker {}'s completer", name_));
        };
        std::size_t sent = 0;
        while (connected()) {
            sent += send(batch, sent);
            if (sent == batch.size()) break;
        }
        if (sent < batch.size())
            log(LogLevel::error, "serve_remote: worker {} stops while redis at {} is out of reach: {} tasks it ran "
                                 "are not completed there and will run again on the worker that takes them over",
                name_, complete_.url().server(), batch.size() - sent);
        if (!complete_.broken()) reconnect_direct();
        if (batch.empty()) continue;
        {
            std::lock_guard held(held_.m);
            for (const RemoteOutcome& o : batch) held_.entries.erase(EntryKey{o.rank, o.entry});
        }
        held_.room.notify_all();
        batch.clear();
    }
}


void Completer::reconnect_direct() noexcept {
    std::lock_guard direct(direct_m_);
    if (!direct_.broken()) return;
    try {
        direct_.reconnect();
    } catch (const std::exception&) {  // until then, the completer completes every task
    }
}


void Completer::collect_reports(std::vector<Report>& reports,
                                std::vector<std::pair<EntryKey, TaskId>>& running) noexcept {
    reports.clear();
    running.clear();
    if (held_.entries.empty() || Clock::now() < held_.report_at) return;
    held_.report_at = Clock::now() + report_period();
    try {
        for (auto& [key, h] : held_.entries) {
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


void Completer::report_progress(const std::vector<std::pair<EntryKey, TaskId>>& running,
                                std::vector<Report>& reports) noexcept {
    for (const auto& [key, local] : running) {
        const std::optional<TaskInfo> info = TaskSupervisor::instance().get_task_info(local);
        if (!info || info->status != TaskStatus::started) continue;
        const auto progress = static_cast<float>(info->progress);
        std::lock_guard held(held_.m);
        const auto it = held_.entries.find(key);
        if (it == held_.entries.end() || it->second.progress == progress) continue;
        it->second.progress = progress;
        try {
            reports.push_back(Report{it->second.client, it->second.id, it->second.deliveries, progress});
        } catch (...) {  // no memory: reported next time
            it->second.progress = -1.0F;
        }
    }
}


void Completer::send_reports(const std::vector<Report>& reports) noexcept {
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


void Completer::renew(const std::vector<Renewal>& renewing) noexcept {
    std::vector<std::string> indexes;
    indexes.reserve(renewing.size());
    for (const Renewal& r : renewing) indexes.push_back(std::to_string(r.key.first + 1));
    std::vector<std::string_view> args{"EVAL", remote_scripts::renew, "4"};
    for (const std::string& q : keys_.queues()) args.emplace_back(q);
    args.insert(args.end(), {remote_group, name_});
    for (std::size_t i = 0; i < renewing.size(); ++i)
        args.insert(args.end(), {indexes[i], renewing[i].key.second, renewing[i].cancel_key});
    std::vector<const EntryKey*> lost;
    std::vector<const EntryKey*> canceled;
    try {
        const RedisReply reply = complete_.command(args);
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


std::optional<TaskId> Completer::mark(const EntryKey& key, bool Held::*flag) noexcept {
    std::lock_guard held(held_.m);
    const auto it = held_.entries.find(key);
    if (it == held_.entries.end() || it->second.completing || it->second.*flag) return std::nullopt;
    it->second.*flag = true;
    return it->second.local;
}


void Completer::append_complete(RedisConnection& conn, const RemoteOutcome& o) {
    const std::string reply_key = keys_.reply(o.client);
    const std::string task_key = keys_.task(o.client, o.id);
    const std::string deliveries = std::to_string(o.deliveries);
    conn.append({"EVAL", remote_scripts::complete, "3", keys_.queue(o.rank), reply_key, task_key,
                 remote_group, o.entry, name_, o.id, o.outcome, o.value, o.type, record_seconds,
                 name_, deliveries, o.keep});
}


void Completer::read_completed(RedisConnection& conn, const RemoteOutcome& o) {
    if (conn.read_reply().integer() == 0)
        log(LogLevel::warning, "serve_remote: the result of task {} of {} is dropped: its entry is no longer this "
                               "worker's",
            o.id, o.client);
}


std::size_t Completer::send(const std::vector<RemoteOutcome>& batch, std::size_t from) noexcept {
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

}  // namespace atasker::detail
