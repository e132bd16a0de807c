// The remote lane's connection to Redis: urls, binary-safe commands, and the
// errors a user sees for a bad url, an unreachable server, an error reply
// and a server that went away. Each case runs against a redis-server of its
// own (tests/redis_server.hpp).

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atasker/error.hpp>

#include "error_text.hpp"
#include "redis_server.hpp"
#include "remote/redis_connection.hpp"

namespace at = atasker;
using test_support::error_of;
using at::detail::parse_redis_url;
using at::detail::RedisConnection;
using test_support::RedisServer;


TEST_CASE("redis url: host, port and database are read from redis://host:port/db" * doctest::timeout(10)) {
    const auto a = parse_redis_url("redis://10.0.0.5:6380/3");
    CHECK(a.host == "10.0.0.5");
    CHECK(a.port == 6380);
    CHECK(a.db == 3);
    CHECK(a.server() == "10.0.0.5:6380");
    CHECK(a.text == "redis://10.0.0.5:6380/3");

    const auto b = parse_redis_url("redis://cache.internal");
    CHECK(b.host == "cache.internal");
    CHECK(b.port == 6379);
    CHECK(b.db == 0);

    const auto c = parse_redis_url("redis://[::1]:7000");
    CHECK(c.host == "::1");
    CHECK(c.port == 7000);
    CHECK(c.server() == "[::1]:7000");
}

TEST_CASE("redis url: a bad url is refused with what is wrong and how to write one" * doctest::timeout(10)) {
    const auto refused = [](std::string_view url, std::string_view why) {
        CHECK(error_of([&] { (void)parse_redis_url(url); }) ==
              fmt::format("'{}' is not a redis url: {}; write redis://host:port or redis://host:port/db", url, why));
    };
    refused("127.0.0.1:6379", "it does not start with redis://");
    refused("redis://:6379", "the host is missing");
    refused("redis://localhost:http", "the port 'http' is not a number from 1 to 65535");
    refused("redis://localhost:70000", "the port '70000' is not a number from 1 to 65535");
    refused("redis://localhost:6379/x", "the database 'x' is not a number from 0");
    refused("redis://user:pw@localhost:6379", "a user or password in the url is not supported");
    refused("rediss://localhost:6379", "TLS (rediss://) is not supported by the hiredis this library uses");
    refused("redis://localhost:", "the port after ':' is missing");
    refused("redis://[::1", "an IPv6 address lacks its closing ]");
}

TEST_CASE("redis connection: an unreachable server is an error naming it and what to do" * doctest::timeout(30)) {
    const int port = test_support::free_port();  // nothing listens there
    const std::string url = fmt::format("redis://127.0.0.1:{}", port);
    CHECK(error_of([&] { RedisConnection c(parse_redis_url(url)); }) ==
          fmt::format("cannot connect to redis at 127.0.0.1:{} ({}): Connection refused; start redis-server there, "
                      "or correct the url",
                      port, url));
}

TEST_CASE("redis connection: values cross binary-safe, as they were written" * doctest::timeout(60)) {
    RedisServer server;
    RedisConnection c(parse_redis_url(server.url()));
    CHECK(c.command({"PING"}).str() == "PONG");

    // NULs, CR LF (the protocol's own separator), every byte value.
    std::string key("k\0\r\n ey", 7);
    std::string value;
    for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
    value += std::string("\r\n$3\r\n\0", 7);
    CHECK(c.command({"SET", key, value}).str() == "OK");
    CHECK(c.command({"GET", key}).str() == value);

    // One value of 4 MiB, far past any buffer's first size.
    std::string big(std::size_t{4} << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
    (void)c.command({"SET", "big", big});
    CHECK(c.command({"GET", "big"}).str() == big);
    CHECK(c.command({"STRLEN", "big"}).integer() == static_cast<long long>(big.size()));
    CHECK(c.command({"GET", "absent"}).is_nil());

    // Arrays, element by element.
    (void)c.command({"RPUSH", "list", "a", std::string_view("\0b", 2), "c"});
    const auto list = c.command({"LRANGE", "list", "0", "-1"});
    REQUIRE(list.is_array());
    REQUIRE(list.size() == 3);
    CHECK(list[0].str() == "a");
    CHECK(list[1].str() == std::string_view("\0b", 2));
    CHECK(list[2].str() == "c");
}

TEST_CASE("redis connection: appended commands are sent together and answered in order" * doctest::timeout(60)) {
    RedisServer server;
    RedisConnection c(parse_redis_url(server.url()));
    for (int i = 0; i < 100; ++i) c.append({"INCR", "counter"});
    for (int i = 1; i <= 100; ++i) CHECK(c.read_reply().integer() == i);
    CHECK(error_of([&] { (void)c.read_reply(); }) ==
          "read_reply() was called with no appended redis command waiting for its reply; append() first");
    // An error reply in a pipeline is that command's, and the rest go on.
    c.append({"SET", "s", "text"});
    c.append({"INCR", "s"});
    c.append({"GET", "s"});
    CHECK(c.read_reply().str() == "OK");
    CHECK(error_of([&] { (void)c.read_reply(); }).starts_with(fmt::format("redis at 127.0.0.1:{} answered INCR", server.port())));
    CHECK(c.read_reply().str() == "text");
}

TEST_CASE("redis connection: an error reply is an Error naming the server, the command and the reason" *
          doctest::timeout(60)) {
    RedisServer server;
    RedisConnection c(parse_redis_url(server.url()));
    (void)c.command({"SET", "name", "not a number"});
    CHECK(error_of([&] { (void)c.command({"INCR", "name"}); }) ==
          fmt::format("redis at 127.0.0.1:{} answered INCR with an error: ERR value is not an integer or out of "
                      "range; is the server redis 7.0 or later, and are the keys of this namespace left to atasker?",
                      server.port()));
    // The connection is still good after an error reply.
    CHECK(!c.broken());
    CHECK(c.command({"GET", "name"}).str() == "not a number");
    // A reply read as the wrong type.
    CHECK(error_of([&] { (void)c.command({"GET", "name"}).integer(); }) ==
          "a redis reply was a string where an integer was expected; is the server redis 7.0 or later, and are the "
          "keys of this namespace left to atasker?");
}

TEST_CASE("redis connection: the database of the url is selected" * doctest::timeout(60)) {
    RedisServer server;
    RedisConnection one(parse_redis_url(server.url(1)));
    RedisConnection zero(parse_redis_url(server.url()));
    (void)one.command({"SET", "where", "db 1"});
    CHECK(one.command({"GET", "where"}).str() == "db 1");
    CHECK(zero.command({"GET", "where"}).is_nil());
    CHECK(error_of([&] { RedisConnection c(parse_redis_url(server.url(99))); }) ==
          fmt::format("redis at 127.0.0.1:{} refused the database 99 of 'redis://127.0.0.1:{}/99' (redis at "
                      "127.0.0.1:{} answered SELECT with an error: ERR DB index is out of range; is the server redis "
                      "7.0 or later, and are the keys of this namespace left to atasker?); use a database the server "
                      "has (its 'databases' setting)",
                      server.port(), server.port(), server.port()));
}

TEST_CASE("redis connection: a server that went away is an Error, and the connection stays broken" *
          doctest::timeout(60)) {
    RedisServer server;
    RedisConnection c(parse_redis_url(server.url()));
    CHECK(c.command({"PING"}).str() == "PONG");
    server.stop();
    // 4 MiB take many writes: those after the peer's reset raise SIGPIPE,
    // which must not kill the process.
    const std::string big(std::size_t{4} << 20, 'x');
    const std::string lost = error_of([&] { (void)c.command({"SET", "k", big}); });
    CHECK(lost.starts_with(fmt::format("lost the connection to redis at 127.0.0.1:{} during SET: ", server.port())));
    CHECK(lost.ends_with("; check that redis-server runs and is reachable there"));
    CHECK(c.broken());
    const std::string again = error_of([&] { (void)c.command({"PING"}); });
    CHECK(again.starts_with(fmt::format("the connection to redis at 127.0.0.1:{} was lost (", server.port())));
    CHECK(again.ends_with("); reconnect() first"));
    // A second write to the dead socket, through a pipeline.
    CHECK(error_of([&] { c.append({"PING"}); }) == again);
}

TEST_CASE("redis connection: reconnect() fails while the server is away and works once it is back" *
          doctest::timeout(60)) {
    RedisServer server;
    RedisConnection c(parse_redis_url(server.url(1)));  // database 1, selected again on each connection
    (void)c.command({"SET", "k", "before"});
    server.stop();
    CHECK_THROWS_AS((void)c.command({"GET", "k"}), at::Error);
    CHECK(error_of([&] { c.reconnect(); }).starts_with(fmt::format("cannot connect to redis at 127.0.0.1:{}",
                                                                   server.port())));
    CHECK(c.broken());
    server.restart();
    c.reconnect();
    CHECK_FALSE(c.broken());
    (void)c.command({"SET", "k", "after"});
    RedisConnection db0(parse_redis_url(server.url()));
    CHECK(db0.command({"GET", "k"}).is_nil());  // it went to database 1
    CHECK(c.command({"GET", "k"}).str() == "after");
}

TEST_CASE("redis connection: the kernel drops a connection whose server stops answering, idle or waiting" *
          doctest::timeout(60)) {
    RedisServer server;
    RedisConnection c(parse_redis_url(server.url()));
    const auto option = [&](int level, int name) {
        int value = 0;
        socklen_t size = sizeof value;
        REQUIRE(::getsockopt(c.socket(), level, name, &value, &size) == 0);
        return value;
    };
    const auto check = [&] {
        CHECK(option(SOL_SOCKET, SO_KEEPALIVE) == 1);
        CHECK(option(IPPROTO_TCP, TCP_KEEPIDLE) == RedisConnection::keepalive_idle_s);
        CHECK(option(IPPROTO_TCP, TCP_KEEPINTVL) == RedisConnection::keepalive_interval_s);
        CHECK(option(IPPROTO_TCP, TCP_USER_TIMEOUT) == RedisConnection::dead_peer_timeout.count());
    };
    check();
    server.stop();
    CHECK_THROWS_AS((void)c.command({"PING"}), at::Error);
    server.restart();
    c.reconnect();
    check();  // a fresh connection, set up the same
}
