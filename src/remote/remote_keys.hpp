#pragma once
// The Redis keys of one namespace. Every key carries the hash tag {ns}, so
// that on a Redis Cluster they share a slot and one Lua script may touch
// them all:
//
//   at:{ns}:q:<priority>       a stream per priority (critical, high, normal,
//                               low); consumer group "workers"
//   at:{ns}:reply:<client>     a client's reply stream, read by that client only
//   at:{ns}:task:<client>:<id> a task's hash (status, worker, error,
//                               deliveries), expiring
//   at:{ns}:cancel:<client>:<id> set when the client canceled a task it sent
//                               (expiring): no worker runs it any more
//   at:{ns}:tasks              the namespace's MpTasks: name -> signature (a hash)
//   at:{ns}:wake:<worker>      a worker's own stream, written to stop its wait
//
// A task entry on a priority stream has the fields `id` (the client's task
// id), `client`, `name` (the MpTask's), `args` (the codec's bytes) and
// `timeout` (nanoseconds, 0 for none). A reply entry has `id`, `outcome`
// (ok, remote, timeout, error, or stop: the client's own end marker),
// `value` (the result's bytes, or the error's message) and `type` (the
// exception type of a remote outcome).

#include <array>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <unistd.h>

#include <atasker/error.hpp>
#include <atasker/priority.hpp>

namespace atasker::detail {

/// This host's name, as the names of clients and workers say where they run.
inline std::string this_host() {
    std::array<char, 256> name{};
    if (::gethostname(name.data(), name.size() - 1) != 0) return "host";
    return name.data();
}

/// Seconds a finished task's hash, a cancel key, and a reply stream nobody
/// reads are kept.
inline constexpr std::string_view record_seconds = "3600";

/// The consumer group every worker reads the priority streams in.
inline constexpr std::string_view remote_group = "workers";

class RemoteKeys {
public:
    /// \throws Error when `ns` is empty or holds other than letters, digits,
    /// '-', '_' and '.'.
    explicit RemoteKeys(std::string_view ns) : ns_(ns) {
        const bool ok = !ns.empty() && ns.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789-_.") == std::string_view::npos;
        if (!ok)
            throw Error(fmt::format("'{}' is not a namespace for the remote pool; use letters, digits, '-', '_' and "
                                    "'.', e.g. \"myapp\"",
                                    ns));
        for (int rank = 0; rank < priority_levels; ++rank)
            queues_[static_cast<std::size_t>(rank)] = fmt::format("at:{{{}}}:q:{}", ns, to_string(priority_of_rank(rank)));
    }

    [[nodiscard]] const std::string& ns() const noexcept { return ns_; }
    /// `at:{ns}:`, the start of every key (the Lua scripts build some).
    [[nodiscard]] std::string prefix() const { return fmt::format("at:{{{}}}:", ns_); }
    /// The priority stream of priority rank `rank` (0: critical).
    [[nodiscard]] const std::string& queue(int rank) const noexcept { return queues_[static_cast<std::size_t>(rank)]; }
    [[nodiscard]] const std::array<std::string, priority_levels>& queues() const noexcept { return queues_; }
    [[nodiscard]] std::string reply(std::string_view client) const { return fmt::format("at:{{{}}}:reply:{}", ns_, client); }
    [[nodiscard]] std::string task(std::string_view client, std::string_view id) const {
        return fmt::format("at:{{{}}}:task:{}:{}", ns_, client, id);
    }
    [[nodiscard]] std::string cancel(std::string_view client, std::string_view id) const {
        return fmt::format("at:{{{}}}:cancel:{}:{}", ns_, client, id);
    }
    [[nodiscard]] std::string tasks() const { return fmt::format("at:{{{}}}:tasks", ns_); }
    [[nodiscard]] std::string wake(std::string_view worker) const { return fmt::format("at:{{{}}}:wake:{}", ns_, worker); }

private:
    std::string ns_;
    std::array<std::string, priority_levels> queues_;
};

}  // namespace atasker::detail
