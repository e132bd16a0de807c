#include <doctest/doctest.h>

#include <atasker/log.hpp>

#include <string>
#include <utility>
#include <vector>

namespace at = atasker;

TEST_CASE("log: a replaced sink receives messages at and above the level") {
    std::vector<std::pair<at::LogLevel, std::string>> seen;
    at::set_log_sink([&](at::LogLevel l, std::string_view m) { seen.emplace_back(l, std::string(m)); });
    at::log(at::LogLevel::debug, "hidden {}", 1);
    at::log(at::LogLevel::warning, "shown {}", 2);
    at::set_debug(true);
    at::log(at::LogLevel::debug, "now shown {}", 3);
    at::set_debug(false);
    at::set_log_sink({});
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] == std::pair{at::LogLevel::warning, std::string("shown 2")});
    CHECK(seen[1] == std::pair{at::LogLevel::debug, std::string("now shown 3")});
}

TEST_CASE("log: a throwing sink does not take the program down") {
    at::set_log_sink([](at::LogLevel, std::string_view) { throw 1; });
    CHECK_NOTHROW(at::log(at::LogLevel::error, "boom"));
    at::set_log_sink({});
}
