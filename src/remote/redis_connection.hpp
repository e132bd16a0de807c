#pragma once
// RedisConnection: one blocking connection to a Redis server (hiredis),
// owned RAII, with binary-safe commands. Every failure is an atasker::Error
// that names the server and says what to do: a url that cannot be read, a
// server that cannot be reached, an error reply, a connection lost midway.
// A connection that lost its server stays unusable (broken()); whoever
// holds it makes a new one.
//
// Not thread-safe: one thread uses a connection at a time.

#include <chrono>
#include <cstddef>
#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include <atasker/export.hpp>

struct redisContext;
struct redisReply;

namespace atasker::detail {

/// Where a Redis server is: read from `redis://host[:port][/db]`.
struct ATASKER_API RedisUrl {
    std::string host;  ///< a name or an address; an IPv6 address without its brackets
    int port = 6379;
    int db = 0;
    /// The url as written, for messages.
    std::string text;

    /// `host:port`, as messages name the server.
    [[nodiscard]] std::string server() const;
};

/// Reads `url`. \throws Error saying what is wrong with it and how to write
/// one (redis://host:port or redis://host:port/db).
[[nodiscard]] ATASKER_API RedisUrl parse_redis_url(std::string_view url);

/// One value of a reply: a string, an array, an integer, nil or a status.
/// A view into the RedisReply that holds it.
class ATASKER_API RedisValue {
public:
    explicit RedisValue(const redisReply* reply) noexcept : reply_(reply) {}

    [[nodiscard]] bool is_nil() const noexcept;
    [[nodiscard]] bool is_array() const noexcept;
    [[nodiscard]] bool is_integer() const noexcept;
    /// The bytes of a string or a status. \throws Error for another type.
    [[nodiscard]] std::string_view str() const;
    /// \throws Error when the value is not an integer.
    [[nodiscard]] long long integer() const;
    /// The elements of an array (0 for nil). \throws Error for another type.
    [[nodiscard]] std::size_t size() const;
    /// Element `i` of an array. \throws Error for another type or past the end.
    [[nodiscard]] RedisValue operator[](std::size_t i) const;
    /// In a flat field/value array (a stream entry's fields), the value of
    /// `name`; empty when it is absent. \throws Error for another type.
    [[nodiscard]] std::string_view field(std::string_view name) const;

private:
    [[noreturn]] void wrong_type(const char* wanted) const;
    const redisReply* reply_;
};

/// A whole reply, freed with it; never an error reply (those are thrown).
class ATASKER_API RedisReply : public RedisValue {
public:
    /// Takes over `reply` (from hiredis).
    explicit RedisReply(redisReply* reply) noexcept;

private:
    struct Free {
        void operator()(redisReply* r) const noexcept;
    };
    std::unique_ptr<redisReply, Free> owned_;
};

class ATASKER_API RedisConnection {
public:
    /// Connects to `url` and selects its database. \throws Error naming the
    /// server when it cannot be reached within `connect_timeout` or refuses
    /// the database.
    explicit RedisConnection(RedisUrl url, std::chrono::milliseconds connect_timeout = std::chrono::seconds(5));
    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;
    ~RedisConnection();

    /// Sends one command (its arguments as bytes, binary-safe) and reads its
    /// reply. \throws Error on an error reply, naming the command and the
    /// server's message; on a lost connection (then broken()).
    RedisReply command(std::span<const std::string_view> args);
    /// command() for a fixed list: `c.command({"SET", key, value})`.
    RedisReply command(std::initializer_list<std::string_view> args) {
        return command(std::span<const std::string_view>(args.begin(), args.size()));
    }

    /// Queues a command without sending it (a pipeline): the next
    /// read_reply() sends every queued one and reads their replies in order.
    /// \throws Error when the connection is broken().
    void append(std::span<const std::string_view> args);
    /// append() for a fixed list.
    void append(std::initializer_list<std::string_view> args) {
        append(std::span<const std::string_view>(args.begin(), args.size()));
    }
    /// The reply of the oldest appended command. \throws as command().
    RedisReply read_reply();

    /// From any thread: makes a command this connection waits in (a
    /// blocking read) fail at once, and the connection broken.
    void interrupt() noexcept;

    /// Connects afresh (a broken connection, or one to a server that came
    /// back), dropping appended commands still waiting for their replies.
    /// \throws Error as the constructor; the connection stays broken.
    void reconnect();

    /// How long a server may leave what was sent unacknowledged, or keepalive
    /// probes unanswered, before the kernel drops the connection (a host
    /// gone or cut off without closing it): TCP_USER_TIMEOUT, with
    /// keepalive probes after `keepalive_idle_s` idle, `keepalive_interval_s`
    /// apart. The connection is then lost as if the server had closed it.
    static constexpr std::chrono::milliseconds dead_peer_timeout{30000};
    static constexpr int keepalive_idle_s = 15;
    static constexpr int keepalive_interval_s = 5;

    /// The server as the url gave it.
    [[nodiscard]] const RedisUrl& url() const noexcept { return url_; }
    /// The connection's socket (for what the kernel keeps on it); -1 when none.
    [[nodiscard]] int socket() const noexcept;
    /// True once the connection was lost: every command throws.
    [[nodiscard]] bool broken() const noexcept { return !lost_.empty(); }
    /// Why it was lost (empty while it works).
    [[nodiscard]] const std::string& why_lost() const noexcept { return lost_; }

private:
    struct Free {
        void operator()(redisContext* c) const noexcept;
    };
    /// A new context, connected. \throws as the constructor.
    [[nodiscard]] std::unique_ptr<redisContext, Free> connect() const;
    /// Selects the url's database (none to select for 0). \throws as the constructor.
    void select_db();
    [[noreturn]] void fail(std::string_view doing);
    RedisReply checked(void* reply, std::string_view command);
    void check_usable() const;

    RedisUrl url_;
    std::chrono::milliseconds connect_timeout_;
    std::mutex swap_;  // held where interrupt() and reconnect() meet on context_
    std::unique_ptr<redisContext, Free> context_;
    std::string lost_;  // why the connection was lost; empty while it works
    std::deque<std::string> pending_;  // the names of appended commands, oldest first
};

}  // namespace atasker::detail
