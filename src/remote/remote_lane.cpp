#include "remote/remote_lane.hpp"

#include <algorithm>
#include <charconv>
#include <random>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <unistd.h>

#include <atasker/error.hpp>
#include <atasker/log.hpp>

#include "core/task_table.hpp"
#include "process/mp_registry.hpp"
#include "remote/reconnect.hpp"
#include "sync/system_error.hpp"

namespace atasker::detail {
namespace {

/// Calls sent in one round trip at most.
constexpr std::size_t max_batch = 64;

/// A name for one run of a client, unique in the namespace: host, pid and
/// 64 random bits (a restarted client, or another with the same pid
/// elsewhere, gets another).
std::string client_name() {
    std::random_device random;
    const std::uint64_t salt = (std::uint64_t{random()} << 32) ^ random();
    return fmt::format("{}:{}:{:016x}", this_host(), ::getpid(), salt);
}

/// Seconds Redis keeps a task's hash after it ended: the supervisor's
/// RetentionOptions::max_age, rounded up; 0 where records are not kept.
std::string kept_seconds(const RetentionOptions& retention) {
    if (retention.max_finished == 0 || retention.max_age.count() <= 0) return "0";
    return std::to_string(std::chrono::ceil<std::chrono::seconds>(retention.max_age).count());
}

std::exception_ptr error_of_reply(std::string_view outcome, std::string_view value, std::string_view type) {
    const std::string message(value);
    if (outcome == "remote") return std::make_exception_ptr(RemoteError(std::string(type), message));
    if (outcome == "timeout") return std::make_exception_ptr(TimeoutError(message));
    if (outcome == "canceled") return std::make_exception_ptr(CanceledError(message));
    return std::make_exception_ptr(Error(message));
}

}  // namespace

RemoteLane::RemoteLane(LaneHost& host) : Lane(host, false) {
    admission_.configure(options_);
    starts_here_ = true;  // a call to an idle lane
}

RemoteLane::~RemoteLane() {
    // The supervisor joins every lane before it is destroyed; a lane never
    // started has nothing to join.
    if (sender_.joinable()) sender_.join();
    if (reader_.joinable()) reader_.join();
}

void RemoteLane::setup(RedisUrl url, const std::string& ns, const PoolOptions& options, bool active,
                       std::unique_lock<SupervisorMutex>& lock) {
    auto keys = std::make_unique<RemoteKeys>(ns);
    if (running_) {
        // The threads use the server and keys they started with: only the limits change.
        if (url.host != url_->host || url.port != url_->port || url.db != url_->db || ns != keys_->ns())
            throw Error(fmt::format("the remote pool runs on {} in namespace '{}'; stop the supervisor before moving "
                                    "it to {} in namespace '{}'",
                                    url_->text, keys_->ns(), url.text, ns));
        configure(options, active, lock);
        return;
    }
    std::optional<RedisUrl> old_url = std::exchange(url_, std::move(url));
    std::unique_ptr<RemoteKeys> old_keys = std::exchange(keys_, std::move(keys));
    try {
        configure(options, active, lock);
    } catch (...) {
        url_ = std::move(old_url);
        keys_ = std::move(old_keys);
        throw;
    }
}

void RemoteLane::configure(const PoolOptions& options, bool active, std::unique_lock<SupervisorMutex>& lock) {
    if (active && keys_ && !running_) {
        const PoolOptions previous = std::exchange(options_, options);
        try {
            start(lock);
        } catch (...) {
            options_ = previous;
            throw;
        }
    }
    options_ = options;
    admission_.configure(options);
    wake();
}

void RemoteLane::start(std::unique_lock<SupervisorMutex>& lock) {
    if (!keys_) return;
    if (running_) {
        {
            std::lock_guard held(m_);
            if (!stopping_) return;
        }
        join_threads(lock);  // a stop that did not wait left them ending
    }
    const RedisUrl url = *url_;
    const RemoteKeys keys = *keys_;
    // Connecting waits for the network: not under the supervisor's mutex.
    lock.unlock();
    std::unique_ptr<RedisConnection> send;
    std::unique_ptr<RedisConnection> read;
    std::string client;
    try {
        send = std::make_unique<RedisConnection>(url);
        read = std::make_unique<RedisConnection>(url);
        client = client_name();
    } catch (...) {
        lock.lock();
        throw;
    }
    lock.lock();
    if (running_) return;  // another start() got there first
    client_ = std::move(client);
    reply_key_ = keys.reply(client_);
    send_conn_ = std::move(send);
    read_conn_ = std::move(read);
    {
        std::lock_guard held(m_);
        wake_ = true;  // tasks may have queued meanwhile
        stopping_ = false;
    }
    sender_done_ = false;
    reader_done_ = false;
    reader_ = start_thread("remote lane reader", [this] { read_loop(); });
    try {
        sender_ = start_thread("remote lane sender", [this] { send_loop(); });
    } catch (...) {
        {
            std::lock_guard held(m_);
            stopping_ = true;
        }
        read_conn_->interrupt();
        lock.unlock();
        reader_.join();
        lock.lock();
        throw;
    }
    running_ = true;
}

void RemoteLane::wake() noexcept {
    std::lock_guard held(m_);
    wake_ = true;
    cv_.notify_all();  // the sender; the reader, waiting to reconnect, waits on
}

void RemoteLane::describe(PoolInfo& info) const {
    info.options = options_;
    info.workers = 0;
    info.idle = 0;
}

void RemoteLane::begin_stop() {
    std::lock_guard held(m_);
    stopping_ = true;
    cv_.notify_all();
}

void RemoteLane::join(std::unique_lock<SupervisorMutex>& lock, bool all) {
    if (!running_ || runs_this_thread()) return;  // a thread of its own is joined later
    {
        std::lock_guard held(m_);
        if (!stopping_) return;
    }
    if (!all && !(sender_done_.load() && reader_done_.load())) return;
    join_threads(lock);
}

void RemoteLane::join_threads(std::unique_lock<SupervisorMutex>& lock) {
    std::thread sender = std::move(sender_);
    std::thread reader = std::move(reader_);
    lock.unlock();
    if (sender.joinable()) sender.join();
    if (reader.joinable()) reader.join();
    lock.lock();
    send_conn_.reset();
    read_conn_.reset();
    sender_id_ = std::thread::id{};
    reader_id_ = std::thread::id{};
    running_ = false;
}

bool RemoteLane::runs_this_thread() const noexcept {
    const auto me = std::this_thread::get_id();
    return sender_id_.load() == me || reader_id_.load() == me;
}

bool RemoteLane::claim(TaskBase* task) noexcept {
    std::lock_guard held(m_);
    return in_flight_.erase(task->id) != 0;
}

bool RemoteLane::request_stop(TaskBase* task) noexcept {
    {
        std::lock_guard held(m_);
        if (in_flight_.erase(task->id) == 0) return false;
        try {
            cancels_.push_back(task->id);
            wake_ = true;
            cv_.notify_all();
        } catch (...) {  // no memory: it ends here all the same; a worker may still run it
        }
    }
    task->set_error(std::make_exception_ptr(CanceledError(
                        "canceled after it was sent to the remote pool: a worker that has not taken it never runs "
                        "it, one that runs it stops it")),
                    TaskStatus::canceled);
    end_task(task);
    return true;
}

void RemoteLane::send_cancels(RedisConnection& conn, const std::vector<TaskId>& ids) noexcept {
    std::size_t appended = 0;
    try {
        for (const TaskId id : ids) {
            const std::string key = keys_->cancel(client_, std::to_string(id));
            conn.append({"SET", key, "1", "EX", record_seconds});
            ++appended;
        }
    } catch (const std::exception& e) {
        log(LogLevel::warning, "remote pool: could not tell the workers of {} canceled tasks: {}",
            ids.size() - appended, e.what());
    }
    for (std::size_t i = 0; i < appended; ++i) {
        try {
            (void)conn.read_reply();
        } catch (const std::exception& e) {
            log(LogLevel::warning, "remote pool: could not tell the workers of canceled task {}: {}", ids[i],
                e.what());
            if (conn.broken()) return;
        }
    }
}

void RemoteLane::end_task(TaskBase* task) noexcept {
    std::string log_line;
    bool ended = false;
    {
        std::unique_lock lock(host_.supervisor_mutex());
        ended = host_.complete(task, wall_now(), log_line);
        if (ended) host_.begin_settle();
    }
    if (!ended) return;  // it runs again (retries): the supervisor keeps it
    host_.settle(task, log_line);
    host_.end_settle();
}

void RemoteLane::note_worker(TaskBase* task, const RedisValue& fields) noexcept {
    try {
        const std::string_view worker = fields.field("worker");
        if (worker.empty()) return;
        const std::string_view attempts_text = fields.field("attempts");
        unsigned attempts = 1;
        (void)std::from_chars(attempts_text.data(), attempts_text.data() + attempts_text.size(), attempts);
        std::string name(worker);
        std::lock_guard lock(host_.supervisor_mutex());
        host_.note_worker(task, std::move(name), attempts);
    } catch (...) {  // no memory: the record says less
    }
}

void RemoteLane::apply_report(TaskId id, const RedisValue& fields) noexcept {
    TaskBase* task = nullptr;
    {
        std::lock_guard held(m_);
        const auto it = in_flight_.find(id);
        if (it == in_flight_.end()) return;  // ended or canceled here meanwhile
        if (fields.field("event") == "progress") {
            const std::string_view text = fields.field("progress");
            float progress = 0.0F;
            if (std::from_chars(text.data(), text.data() + text.size(), progress).ec == std::errc() &&
                it->second.progress != nullptr)
                it->second.progress->store(std::clamp(progress, 0.0F, 1.0F), std::memory_order_relaxed);
            return;
        }
        task = it->second.call.task;
        task->add_ref();  // the reader's, while it notes the worker
    }
    note_worker(task, fields);
    task->release();
}

void RemoteLane::fail_in_flight(const std::exception_ptr& error) noexcept {
    std::vector<TaskBase*> failed;
    {
        std::lock_guard held(m_);
        for (auto& [id, f] : in_flight_) failed.push_back(f.call.task);
        in_flight_.clear();
    }
    for (TaskBase* t : failed) {
        t->set_error(error);
        end_task(t);
    }
}

// ---- the sender

std::optional<Job> RemoteLane::start_here(TaskBase* task, std::atomic<float>* progress) noexcept {
    if (!running_ || !conn_m_.try_lock()) return std::nullopt;  // the sender sends
    bool idle = false;
    {
        std::lock_guard held(m_);
        idle = !stopping_ && in_flight_.empty() && cancels_.empty();
    }
    try {
        if (idle && !send_conn_->broken()) {
            keep_ = kept_seconds(host_.retention());
            return Job{.task = task, .progress = progress};
        }
    } catch (...) {  // no memory: the sender sends it
    }
    conn_m_.unlock();
    return std::nullopt;
}

void RemoteLane::run_here(const Job& job) noexcept {
    std::unique_lock conn(conn_m_, std::adopt_lock);  // taken by start_here()
    send(std::span(&job, 1));
    const bool lost = send_conn_->broken();
    conn.unlock();
    if (lost) wake();  // the sender connects again, then sends the task, back in the queue
}

void RemoteLane::send(std::span<const Job> jobs) noexcept {
    {
        // In flight from here, so that a cancel can claim a task before its
        // call is sent; the sender's own reference keeps a task so claimed,
        // and ended, alive until it is done with it.
        std::lock_guard held(m_);
        for (const Job& job : jobs) {
            job.task->add_ref();
            in_flight_.emplace(job.task->id, InFlight{MpCall{.task = job.task}, job.progress});
        }
    }
    for (const Job& job : jobs) job.task->run(RunContext{.progress = Progress(), .carrier = this});
    flush();
    for (const Job& job : jobs) job.task->release();
}

void RemoteLane::send_loop() noexcept {
    sender_id_ = std::this_thread::get_id();
    std::vector<TaskId> cancels;
    for (;;) {
        {
            std::unique_lock held(m_);
            cv_.wait(held, [this] { return wake_ || stopping_; });
            if (stopping_) break;
            wake_ = false;
        }
        const std::lock_guard conn(conn_m_);
        {
            std::lock_guard held(m_);
            cancels.swap(cancels_);
        }
        // Lost: tasks wait in the queue until the server is back.
        if (send_conn_->broken() &&
            !reconnect(*send_conn_, m_, cv_, [this] { return stopping_; }, [] {}, "remote pool: the sender"))
            break;
        if (!cancels.empty()) {
            send_cancels(*send_conn_, cancels);
            cancels.clear();
        }
        batch_.clear();
        {
            std::unique_lock lock(host_.supervisor_mutex());
            const WallNanos now = wall_now();
            keep_ = kept_seconds(host_.retention());
            while (batch_.size() < max_batch) {
                const Job job = host_.take(*this, now);
                if (job.task == nullptr) break;
                batch_.push_back(job);
            }
        }
        if (batch_.size() == max_batch) {
            std::lock_guard held(m_);
            wake_ = true;  // more may wait: another round
        }
        send(batch_);
    }
    const std::lock_guard conn(conn_m_);  // after a putting thread's send: the marker goes last
    {
        std::lock_guard held(m_);
        cancels.swap(cancels_);
    }
    if (!cancels.empty()) send_cancels(*send_conn_, cancels);
    // The reader ends at this marker, after every reply sent before it.
    try {
        (void)send_conn_->command({"XADD", reply_key_, "*", "id", "0", "outcome", "stop"});
    } catch (...) {
        read_conn_->interrupt();  // the server is gone: the reader's wait fails
    }
    sender_done_ = true;
}

void RemoteLane::carry(const MpCall& call) noexcept {
    TaskBase* task = call.task;
    try {
        ByteWriter measure = ByteWriter::measuring();
        call.write_args(call.context, 0, measure);
        std::string args(measure.size(), '\0');
        ByteWriter out(reinterpret_cast<std::byte*>(args.data()), args.size());
        call.write_args(call.context, 0, out);
        const MpRegistryEntry* entry = find_mp_task(call.task_index);
        if (entry == nullptr) throw Error("a remote task's MpTask is not registered; define MpTasks at namespace scope");
        {
            std::lock_guard held(m_);
            const auto it = in_flight_.find(task->id);
            if (it == in_flight_.end()) return;  // canceled since it was taken: ended there
            it->second.call = call;
        }
        const std::string id = std::to_string(task->id);
        const std::string timeout = std::to_string(call.timeout.count());
        sent_.push_back(task);
        send_conn_->append({"XADD", keys_->queue(task->rank), "*", "id", id, "client", client_, "name", entry->name,
                            "args", args, "timeout", timeout, "keep", keep_});
    } catch (...) {
        if (!sent_.empty() && sent_.back() == task) sent_.pop_back();
        if (!claim(task)) return;  // canceled meanwhile
        task->set_error(std::current_exception());
        end_task(task);
    }
}

void RemoteLane::flush() noexcept {
    std::size_t i = 0;
    try {
        for (; i < sent_.size(); ++i) {
            try {
                (void)send_conn_->read_reply();
            } catch (...) {
                if (send_conn_->broken()) throw;
                if (claim(sent_[i])) {  // this XADD only was refused
                    sent_[i]->set_error(std::current_exception());
                    end_task(sent_[i]);
                }
            }
        }
    } catch (const std::exception&) {
        // The connection broke: the server may or may not have taken the
        // rest. Each goes back to the queue and is sent again once the
        // sender has connected again (a task the server did take may then
        // run twice: delivery is at-least-once).
        for (; i < sent_.size(); ++i)
            if (claim(sent_[i])) {
                std::lock_guard lock(host_.supervisor_mutex());
                host_.requeue(sent_[i]);
            }
    }
    sent_.clear();
}

// ---- the reader

void RemoteLane::read_loop() noexcept {
    reader_id_ = std::this_thread::get_id();
    std::string last = "0-0";
    for (;;) {
        try {
            read_replies(last);
            break;  // the sender's stop marker
        } catch (const std::exception&) {
            // Their replies may be lost with the server: every task in
            // flight fails now rather than wait for ever; what is sent once
            // the server is back is read from where the reader left off.
            fail_in_flight(std::current_exception());
            if (!reconnect(*read_conn_, m_, cv_, [this] { return stopping_; }, [] {}, "remote pool: the reader"))
                break;
        }
    }
    try {
        (void)read_conn_->command({"DEL", reply_key_});
    } catch (...) {  // the server is gone: the key expires with it
    }
    // Stopped without waiting: what is still in flight ends here, and no
    // worker runs it any more; nor one canceled after the sender's last
    // round (it has written the stop marker: it sends no more).
    std::vector<TaskId> ids;
    {
        std::lock_guard held(m_);
        for (const auto& [id, f] : in_flight_) ids.push_back(id);
        ids.insert(ids.end(), cancels_.begin(), cancels_.end());
        cancels_.clear();
    }
    if (!ids.empty() && !read_conn_->broken()) send_cancels(*read_conn_, ids);
    fail_in_flight(std::make_exception_ptr(
        CanceledError("the supervisor stopped before a remote worker answered: a worker that has not taken the task "
                      "never runs it, one that runs it stops it")));
    reader_done_ = true;
}

void RemoteLane::read_replies(std::string& last) {
    std::vector<std::string> done;
    for (;;) {
        // The replies read last round are deleted in the same round trip.
        const bool deleting = !done.empty();
        if (deleting) {
            std::vector<std::string_view> xdel{"XDEL", reply_key_};
            for (const std::string& id : done) xdel.emplace_back(id);
            read_conn_->append(xdel);
        }
        read_conn_->append({"XREAD", "COUNT", "256", "BLOCK", "0", "STREAMS", reply_key_, last});
        if (deleting) (void)read_conn_->read_reply();
        const RedisReply reply = read_conn_->read_reply();
        done.clear();
        if (reply.is_nil()) continue;
        const RedisValue entries = reply[0][1];
        bool stop = false;
        for (std::size_t i = 0; i < entries.size(); ++i) {
            const RedisValue entry = entries[i];
            last = entry[0].str();
            done.push_back(last);
            const RedisValue fields = entry[1];
            const std::string_view outcome = fields.field("outcome");
            if (outcome == "stop") {
                stop = true;
                continue;
            }
            const std::string_view id_text = fields.field("id");
            TaskId id = 0;
            (void)std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
            if (outcome.empty()) {
                apply_report(id, fields);
                continue;
            }
            end_replied(id, outcome, fields);
        }
        if (stop) return;
    }
}

void RemoteLane::end_replied(TaskId id, std::string_view outcome, const RedisValue& fields) noexcept {
    MpCall call;
    {
        std::lock_guard held(m_);
        auto it = in_flight_.find(id);
        if (it == in_flight_.end()) return;  // canceled here meanwhile
        call = it->second.call;
        in_flight_.erase(it);
    }
    note_worker(call.task, fields);
    if (outcome == "ok") {
        try {
            const std::string_view value = fields.field("value");
            ByteReader in(reinterpret_cast<const std::byte*>(value.data()), value.size());
            call.read_result(call.context, 0, in);
        } catch (...) {
            call.task->set_error(std::current_exception());
        }
    } else {
        try {
            call.task->set_error(error_of_reply(outcome, fields.field("value"), fields.field("type")));
        } catch (...) {
            call.task->set_error(std::current_exception());
        }
    }
    end_task(call.task);
}

}  // namespace atasker::detail
