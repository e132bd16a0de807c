// A program that uses an installed atasker-cpp, built by
// tests/packaging_test.sh once through CMake (find_package) and once through
// pkg-config. It must compile against the installed headers, link against the
// installed shared library, and run: exit status 0 means the package works.
#include <atasker/atasker.hpp>

#include <cstdio>
#include <string>
#include <string_view>

namespace at = atasker;

int main() {
    std::string seen;
    at::set_log_sink([&seen](at::LogLevel level, std::string_view message) {
        seen = fmt::format("{}: {}", level, message);
    });
    at::set_debug(false);
    at::log(at::LogLevel::warning, "installed atasker says {}", 42);
    at::set_log_sink({});
    if (seen != "warning: installed atasker says 42") {
        std::fprintf(stderr, "consumer: unexpected log record '%s'\n", seen.c_str());
        return 1;
    }
    std::printf("consumer: ok (%s)\n", seen.c_str());
    return 0;
}
