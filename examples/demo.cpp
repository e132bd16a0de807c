// Placeholder demo, to be replaced by the real one (a tour of the supervisor,
// its priorities and both pools). It only proves that a program builds and
// runs against atasker-cpp. The library has no version API yet, so it names
// the library and sends one line through the library's log.
#include <atasker/atasker.hpp>

#include <string_view>

#include <fmt/core.h>

namespace at = atasker;

int main() {
    at::set_log_sink([](at::LogLevel level, std::string_view message) {
        fmt::print("[{}] {}\n", level, message);
    });
    at::set_debug(true);
    fmt::print("atasker-cpp demo (placeholder)\n");
    at::log(at::LogLevel::info, "the library is linked and its log works");
}
