#include "remote/redis_connection.hpp"

#include <charconv>
#include <csignal>
#include <ctime>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atasker/error.hpp>

namespace atasker::detail {
namespace {

constexpr std::string_view url_forms = "write redis://host:port or redis://host:port/db";

[[noreturn]] void bad_url(std::string_view url, std::string_view why) {
    throw Error(fmt::format("'{}' is not a redis url: {}; {}", url, why, url_forms));
}

/// The number in `digits`, when it is one in [low, high].
bool read_number(std::string_view digits, int low, int high, int& out) {
    if (digits.empty()) return false;
    int value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || end != digits.data() + digits.size() || value < low || value > high) return false;
    out = value;
    return true;
}

/// hiredis writes with write(2): a server that closed the connection would
/// kill the process with SIGPIPE. SIGPIPE is blocked on this thread while
/// hiredis writes, and one raised meanwhile is taken back, so the failed
/// write is an EPIPE that becomes an Error.
class SigpipeBlocked {
public:
    SigpipeBlocked() noexcept {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    SigpipeBlocked(const SigpipeBlocked&) = delete;
    SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;
    /// After a failed write: takes back the SIGPIPE it raised. Where the
    /// caller blocked SIGPIPE already, a pending one may be the caller's,
    /// and stays.
    void take_back() noexcept {
        if (sigismember(&old_, SIGPIPE) == 1) return;
        const timespec none{};
        while (sigtimedwait(&pipe_, nullptr, &none) == SIGPIPE) {
        }
    }
    ~SigpipeBlocked() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

private:
    sigset_t pipe_{};
    sigset_t old_{};
};

const char* type_name(int type) noexcept {
    switch (type) {
        case REDIS_REPLY_STRING: return "a string";
        case REDIS_REPLY_ARRAY: return "an array";
        case REDIS_REPLY_INTEGER: return "an integer";
        case REDIS_REPLY_NIL: return "nil";
        case REDIS_REPLY_STATUS: return "a status";
        case REDIS_REPLY_ERROR: return "an error";
        default: return "of an unknown type";
    }
}

}  // namespace

std::string RedisUrl::server() const {
    return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

RedisUrl parse_redis_url(std::string_view url) {
    constexpr std::string_view scheme = "redis://";
    if (url.starts_with("rediss://")) bad_url(url, "TLS (rediss://) is not supported by the hiredis this library uses");
    if (!url.starts_with(scheme)) bad_url(url, "it does not start with redis://");
    std::string_view rest = url.substr(scheme.size());
    if (rest.find('@') != std::string_view::npos) bad_url(url, "a user or password in the url is not supported");
    if (rest.find_first_of("?#") != std::string_view::npos) bad_url(url, "it has a query or fragment, which is not supported");

    RedisUrl out;
    out.text = std::string(url);
    const std::size_t slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
        const std::string_view db = rest.substr(slash + 1);
        if (!read_number(db, 0, 1 << 20, out.db))
            bad_url(url, fmt::format("the database '{}' is not a number from 0", db));
    }

    std::string_view host = authority;
    std::string_view port;
    if (authority.starts_with('[')) {  // [IPv6]:port
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) bad_url(url, "an IPv6 address lacks its closing ]");
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') bad_url(url, "something other than :port follows the IPv6 address");
            port = after.substr(1);
            if (port.empty()) bad_url(url, "the port after ':' is missing");
        }
    } else if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        if (port.empty()) bad_url(url, "the port after ':' is missing");
    }
    if (host.empty()) bad_url(url, "the host is missing");
    if (!port.empty() && !read_number(port, 1, 65535, out.port))
        bad_url(url, fmt::format("the port '{}' is not a number from 1 to 65535", port));
    out.host = std::string(host);
    return out;
}

// ---- RedisValue, RedisReply

bool RedisValue::is_nil() const noexcept { return reply_->type == REDIS_REPLY_NIL; }
bool RedisValue::is_array() const noexcept { return reply_->type == REDIS_REPLY_ARRAY; }
bool RedisValue::is_integer() const noexcept { return reply_->type == REDIS_REPLY_INTEGER; }

std::string_view RedisValue::str() const {
    if (reply_->type != REDIS_REPLY_STRING && reply_->type != REDIS_REPLY_STATUS) wrong_type("a string");
    return {reply_->str, reply_->len};
}

long long RedisValue::integer() const {
    if (reply_->type != REDIS_REPLY_INTEGER) wrong_type("an integer");
    return reply_->integer;
}

std::size_t RedisValue::size() const {
    if (reply_->type == REDIS_REPLY_NIL) return 0;
    if (reply_->type != REDIS_REPLY_ARRAY) wrong_type("an array");
    return reply_->elements;
}

RedisValue RedisValue::operator[](std::size_t i) const {
    if (i >= size())
        throw Error(fmt::format("a redis reply has {} elements, and element {} was read; is the server redis 7.0 or "
                                "later, and are the keys of this namespace left to atasker?",
                                size(), i));
    return RedisValue(reply_->element[i]);
}

std::string_view RedisValue::field(std::string_view name) const {
    const std::size_t n = size();
    for (std::size_t i = 0; i + 1 < n; i += 2)
        if ((*this)[i].str() == name) return (*this)[i + 1].str();
    return {};
}

void RedisValue::wrong_type(const char* wanted) const {
    throw Error(fmt::format("a redis reply was {} where {} was expected; is the server redis 7.0 or later, and are "
                            "the keys of this namespace left to atasker?",
                            type_name(reply_->type), wanted));
}

RedisReply::RedisReply(redisReply* reply) noexcept : RedisValue(reply), owned_(reply) {}

void RedisReply::Free::operator()(redisReply* r) const noexcept { freeReplyObject(r); }

// ---- RedisConnection

void RedisConnection::Free::operator()(redisContext* c) const noexcept { redisFree(c); }

RedisConnection::RedisConnection(RedisUrl url, std::chrono::milliseconds connect_timeout)
    : url_(std::move(url)), connect_timeout_(connect_timeout), context_(connect()) {
    select_db();
}

std::unique_ptr<redisContext, RedisConnection::Free> RedisConnection::connect() const {
    const auto ms = connect_timeout_.count();
    const timeval tv{.tv_sec = static_cast<time_t>(ms / 1000), .tv_usec = static_cast<suseconds_t>(ms % 1000 * 1000)};
    std::unique_ptr<redisContext, Free> context(redisConnectWithTimeout(url_.host.c_str(), url_.port, tv));
    if (!context) throw Error(fmt::format("cannot connect to redis at {}: out of memory", url_.server()));
    if (context->err != 0)
        throw Error(fmt::format("cannot connect to redis at {} ({}): {}; start redis-server there, or correct the url",
                                url_.server(), url_.text, context->errstr));
    // Dead peers are found by the kernel even while nothing is sent
    // (keepalive), and while a command waits for its answer (the user timeout).
    const auto set = [fd = context->fd](int level, int name, int value) {
        (void)::setsockopt(fd, level, name, &value, sizeof value);
    };
    set(SOL_SOCKET, SO_KEEPALIVE, 1);
    set(IPPROTO_TCP, TCP_KEEPIDLE, keepalive_idle_s);
    set(IPPROTO_TCP, TCP_KEEPINTVL, keepalive_interval_s);
    set(IPPROTO_TCP, TCP_KEEPCNT, 3);
    set(IPPROTO_TCP, TCP_USER_TIMEOUT, static_cast<int>(dead_peer_timeout.count()));
    return context;
}

int RedisConnection::socket() const noexcept { return context_ ? context_->fd : -1; }

void RedisConnection::select_db() {
    if (url_.db == 0) return;
    const std::string db = std::to_string(url_.db);
    try {
        (void)command({"SELECT", db});
    } catch (const Error& e) {
        throw Error(fmt::format("redis at {} refused the database {} of '{}' ({}); use a database the server "
                                "has (its 'databases' setting)",
                                url_.server(), url_.db, url_.text, e.what()));
    }
}

void RedisConnection::reconnect() {
    auto fresh = connect();
    {
        const std::lock_guard lock(swap_);
        context_ = std::move(fresh);
    }
    lost_.clear();
    pending_.clear();
    try {
        select_db();
    } catch (const Error&) {
        lost_ = "the server refused the database";
        throw;
    }
}

RedisConnection::~RedisConnection() = default;

void RedisConnection::interrupt() noexcept {
    const std::lock_guard lock(swap_);
    (void)::shutdown(context_->fd, SHUT_RDWR);
}

void RedisConnection::check_usable() const {
    if (broken())
        throw Error(fmt::format("the connection to redis at {} was lost ({}); reconnect() first", url_.server(), lost_));
}

void RedisConnection::fail(std::string_view doing) {
    lost_ = context_->errstr;
    throw Error(fmt::format("lost the connection to redis at {} during {}: {}; check that redis-server runs and is "
                            "reachable there",
                            url_.server(), doing, lost_));
}

RedisReply RedisConnection::checked(void* raw, std::string_view command) {
    RedisReply reply(static_cast<redisReply*>(raw));
    auto* r = static_cast<redisReply*>(raw);
    if (r->type == REDIS_REPLY_ERROR)
        throw Error(fmt::format("redis at {} answered {} with an error: {}; is the server redis 7.0 or later, and "
                                "are the keys of this namespace left to atasker?",
                                url_.server(), command, std::string_view(r->str, r->len)));
    return reply;
}

RedisReply RedisConnection::command(std::span<const std::string_view> args) {
    check_usable();
    if (!pending_.empty())
        throw Error("a redis command was sent while appended ones wait for their replies; read them first "
                    "(read_reply)");
    std::vector<const char*> argv(args.size());
    std::vector<std::size_t> lengths(args.size());
    for (std::size_t i = 0; i < args.size(); ++i) {
        argv[i] = args[i].data();
        lengths[i] = args[i].size();
    }
    const std::string_view name = args.empty() ? std::string_view("a command") : args.front();
    void* reply = nullptr;
    {
        SigpipeBlocked blocked;
        reply = redisCommandArgv(context_.get(), static_cast<int>(args.size()), argv.data(), lengths.data());
        if (reply == nullptr) blocked.take_back();
    }
    if (reply == nullptr) fail(name);
    return checked(reply, name);
}

void RedisConnection::append(std::span<const std::string_view> args) {
    check_usable();
    std::vector<const char*> argv(args.size());
    std::vector<std::size_t> lengths(args.size());
    for (std::size_t i = 0; i < args.size(); ++i) {
        argv[i] = args[i].data();
        lengths[i] = args[i].size();
    }
    if (redisAppendCommandArgv(context_.get(), static_cast<int>(args.size()), argv.data(), lengths.data()) != REDIS_OK)
        throw Error(fmt::format("cannot queue a command for redis at {}: out of memory", url_.server()));
    pending_.emplace_back(args.empty() ? std::string_view("a command") : args.front());
}

RedisReply RedisConnection::read_reply() {
    check_usable();
    if (pending_.empty())
        throw Error("read_reply() was called with no appended redis command waiting for its reply; append() first");
    const std::string name = std::move(pending_.front());
    pending_.pop_front();
    void* reply = nullptr;
    int status = REDIS_OK;
    {
        SigpipeBlocked blocked;
        status = redisGetReply(context_.get(), &reply);
        if (status != REDIS_OK) blocked.take_back();
    }
    if (status != REDIS_OK || reply == nullptr) fail(name);
    return checked(reply, name);
}

}  // namespace atasker::detail
