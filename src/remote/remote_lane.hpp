#pragma once
// RemoteLane: remote tasks (TaskType::remote), sent to Redis and run by
// workers on any host (serve_remote.cpp). Two threads, each with its own
// connection:
//
// * the sender takes the tasks admission lets start (remote tasks in
//   flight count as running), encodes each call's arguments with the codec
//   and adds it to the stream of its priority, a batch per round trip; a
//   task put while nothing is in flight is sent by the putting thread
//   itself (start_here), a wake-up sooner, on the sender's connection
//   (whoever sends holds conn_m_);
// * the reader waits on the client's own reply stream (XREAD BLOCK, one
//   stream for every task: nothing subscribes per task) and ends each task
//   its reply names through the LaneHost, as a fiber loop ends a process
//   call. Workers report there too where a task started (its record's
//   worker and attempts) and its progress (its record's progress).
//
// A task is in `in_flight_` from the moment the sender took it until one of
// three ends claims it (erases it): its reply, a failure to send it, or a
// cancel (request_stop, which ends it here as canceled and has the sender
// set the task's cancel key: a worker that has not taken it never runs it,
// one that runs it stops it at its next lease renewal). The sender holds a
// reference to each task of its batch meanwhile.
// A lost connection fails every task in flight with the error that names
// the server; the sender and the reader then connect again with backoff
// (reconnect.hpp), and tasks put meanwhile wait in the queue.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <atasker/detail/mp_call.hpp>

#include "core/lane.hpp"
#include "remote/redis_connection.hpp"
#include "remote/remote_keys.hpp"

namespace atasker::detail {

class RemoteLane final : public Lane, CallCarrier {
public:
    explicit RemoteLane(LaneHost& host);
    ~RemoteLane() override;

    /// Under the mutex: sets the server, namespace and limits
    /// (set_remote_pool()); connects when `active`. On failure the lane keeps
    /// what it had. \throws Error when active with another server or
    /// namespace, or when the server cannot be reached.
    void setup(RedisUrl url, const std::string& ns, const PoolOptions& options, bool active,
               std::unique_lock<SupervisorMutex>& lock);

    [[nodiscard]] const char* refusal() const noexcept override {
        return keys_ ? nullptr : "the remote pool is not set up; call set_remote_pool() before putting remote tasks";
    }
    void configure(const PoolOptions& options, bool active, std::unique_lock<SupervisorMutex>& lock) override;
    void start(std::unique_lock<SupervisorMutex>& lock) override;
    void wake() noexcept override;
    void describe(PoolInfo& info) const override;
    void begin_stop() override;
    void join(std::unique_lock<SupervisorMutex>& lock, bool all) override;
    [[nodiscard]] bool empty() const noexcept override { return !running_; }
    // A task in flight counts as running in the admission, and one being
    // settled is counted by begin_settle(): nothing else keeps it busy.
    [[nodiscard]] bool busy() const noexcept override { return false; }
    bool request_stop(TaskBase* task) noexcept override;
    [[nodiscard]] bool runs_this_thread() const noexcept override;
    /// When nothing is in flight and nobody sends: the putting thread sends
    /// the task itself (run_here), holding conn_m_ from here to the end.
    [[nodiscard]] std::optional<Job> start_here(TaskBase* task, std::atomic<float>* progress) noexcept override;
    void run_here(const Job& job) noexcept override;

private:
    // CallCarrier, on the sender: queues the call's XADD.
    void carry(const MpCall& call) noexcept override;

    void send_loop() noexcept;
    /// Holding conn_m_: sends the calls of `jobs` in one round trip.
    void send(std::span<const Job> jobs) noexcept;
    void read_loop() noexcept;
    /// Reads replies after `last` (updated as it goes) until the sender's
    /// stop marker. \throws Error on a lost connection.
    void read_replies(std::string& last);
    /// Ends task `id` as its reply says (`outcome` and the reply's fields).
    void end_replied(TaskId id, std::string_view outcome, const RedisValue& fields) noexcept;
    /// Sends the queued XADDs and reads their replies; a failed one fails its task.
    void flush() noexcept;
    /// Sets the cancel keys of `ids` in one round trip on `conn`; best
    /// effort (a lost connection fails the tasks in flight anyway).
    void send_cancels(RedisConnection& conn, const std::vector<TaskId>& ids) noexcept;
    /// Without the mutex: records how `task` ended (its outcome is stored) and settles it.
    void end_task(TaskBase* task) noexcept;
    /// Records from a reply's `worker` and `attempts` fields where `task`
    /// ran; nothing when the reply has none.
    void note_worker(TaskBase* task, const RedisValue& fields) noexcept;
    /// Applies a worker's report on a task in flight (it started, its progress).
    void apply_report(TaskId id, const RedisValue& fields) noexcept;
    /// Claims a task in flight: true when it was (and is no more).
    [[nodiscard]] bool claim(TaskBase* task) noexcept;
    /// Fails every task in flight with `error` (each claimed first).
    void fail_in_flight(const std::exception_ptr& error) noexcept;
    /// Under the supervisor's mutex: joins both threads (releasing `lock`).
    void join_threads(std::unique_lock<SupervisorMutex>& lock);

    // Under the supervisor's mutex.
    PoolOptions options_;
    std::optional<RedisUrl> url_;
    std::unique_ptr<RemoteKeys> keys_;  // set: set_remote_pool() was called
    bool running_ = false;              // threads started and not joined
    std::string client_;                // this run's name in the namespace
    std::string reply_key_;
    std::unique_ptr<RedisConnection> send_conn_;  // the sender's
    std::unique_ptr<RedisConnection> read_conn_;  // the reader's (interrupt() from the sender)
    std::thread sender_;
    std::thread reader_;
    std::atomic<std::thread::id> sender_id_{};
    std::atomic<std::thread::id> reader_id_{};
    std::atomic<bool> sender_done_{false};
    std::atomic<bool> reader_done_{false};

    // Lock order: conn_m_, the supervisor's mutex, m_ (start_here() only
    // tries conn_m_ under the supervisor's mutex).
    std::mutex conn_m_;  // held by whoever sends on send_conn_: the sender, or a putting thread

    // Under conn_m_.
    std::vector<Job> batch_;
    std::vector<TaskBase*> sent_;  // XADDs queued on send_conn_, in order
    std::string keep_;             // seconds Redis keeps a task's hash: the retention's max_age

    // Under m_.
    mutable std::mutex m_;
    std::condition_variable cv_;  // the sender waits for wake_ or stopping_
    bool wake_ = false;
    bool stopping_ = false;
    struct InFlight {
        MpCall call;
        std::atomic<float>* progress = nullptr;  // its record's, alive while it is in flight
    };
    std::unordered_map<TaskId, InFlight> in_flight_;
    std::vector<TaskId> cancels_;  // canceled in flight: their cancel keys are still to set
};

}  // namespace atasker::detail
