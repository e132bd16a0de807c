#pragma once
// RemoteRun: a task a worker fetched, run in its local process pool as a
// process task of its own (TaskType::mp). Its arguments are the codec's
// bytes as the client wrote them, and its result goes back as bytes: the
// worker never decodes either. Its start callback says when it starts in a
// worker process; when it ends, however it ends, its completion callback
// hands the outcome to whoever completes it in Redis.

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include <atasker/detail/mp_call.hpp>
#include <atasker/detail/task_base.hpp>
#include <atasker/error.hpp>

namespace atasker::detail {

/// How a remote task ended, as its reply says it (remote_keys.hpp).
struct RemoteOutcome {
    int rank = 2;          ///< its priority's rank: which stream holds its entry
    std::string entry;     ///< the entry's id in that stream
    std::string client;    ///< who put it
    std::string id;        ///< the client's task id
    std::string outcome;   ///< ok, remote, timeout, canceled or error
    std::string value;     ///< the result's bytes, or the error's message
    std::string type;      ///< a remote error's exception type
    long long deliveries = 1;  ///< how many workers it was given to, this one included
    std::string keep;          ///< seconds its hash is kept in Redis (its client's retention); 0: not kept
};

class RemoteRun final : public TaskBase {
public:
    /// Told that the task starts (on the thread that carries its call), with
    /// its head (the outcome not yet set).
    using Started = void (*)(void* context, const RemoteOutcome& head) noexcept;
    /// Told the outcome once the task ended (on the thread that settles it).
    using Done = void (*)(void* context, RemoteOutcome&& outcome) noexcept;

    RemoteRun(std::uint32_t task_index, std::string args, std::chrono::nanoseconds timeout, RemoteOutcome head,
              Started started, Done done, void* context)
        : task_index_(task_index),
          timeout_(timeout),
          args_(std::move(args)),
          head_(std::move(head)),
          started_(started),
          done_(done),
          context_(context) {
        type = TaskType::mp;
    }

    void run(const RunContext& context) noexcept override {
        started_(context_, head_);
        context.carrier->carry(MpCall{.task = this,
                                      .task_index = task_index_,
                                      .context = this,
                                      .write_args = &write_args,
                                      .read_result = &read_result,
                                      .timeout = timeout_});
    }

    void run_callback() noexcept override {
        RemoteOutcome& o = head_;
        try {
            if (!error()) {
                o.outcome = "ok";
                o.value = std::move(result_);
            } else {
                mark_error_received();  // it goes to the client
                std::rethrow_exception(error());
            }
        } catch (const RemoteError& e) {
            set_outcome("remote", e.what(), e.type_name());
        } catch (const TimeoutError& e) {
            set_outcome("timeout", e.what(), {});
        } catch (const CanceledError& e) {
            set_outcome("canceled", e.what(), {});
        } catch (const std::exception& e) {
            set_outcome("error", e.what(), {});
        } catch (...) {
            set_outcome("error", "a remote task failed with an exception that is not a std::exception", {});
        }
        done_(context_, std::move(o));
    }

private:
    void set_outcome(const char* outcome, const char* message, const std::string& type_name) noexcept {
        try {
            head_.outcome = outcome;
            head_.value = message;
            head_.type = type_name;
        } catch (...) {  // no memory: the outcome says less
            head_.outcome = "error";
        }
    }
    static void write_args(void* self, std::size_t /*item*/, ByteWriter& out) {
        const std::string& a = static_cast<RemoteRun*>(self)->args_;
        out.write(a.data(), a.size());
    }
    static void read_result(void* self, std::size_t /*item*/, ByteReader& in) {
        std::string& r = static_cast<RemoteRun*>(self)->result_;
        r.resize(in.remaining());
        in.read(r.data(), r.size());
    }

    std::uint32_t task_index_;
    std::chrono::nanoseconds timeout_;
    std::string args_;
    std::string result_;
    RemoteOutcome head_;
    Started started_;
    Done done_;
    void* context_;
};

}  // namespace atasker::detail
