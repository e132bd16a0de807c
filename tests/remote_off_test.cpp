// A library built without the remote lane (-Dremote=disabled, or no
// hiredis): everything that needs it says so, and how to build it.

#include <doctest/doctest.h>

#include <string>

#include <atasker/atasker.hpp>

namespace at = atasker;

namespace {

inline const at::MpTask square{"square", [](int x) { return x * x; }};

const std::string off =
    "atasker was built without the remote lane (hiredis was not found); install libhiredis-dev "
    "(scripts/install-deps.sh) and build again with -Dremote=enabled";

}  // namespace

TEST_CASE("remote off: set_remote_pool, serve_remote and a remote task say the lane is not built" *
          doctest::timeout(30)) {
    at::TaskSupervisor sup;
    sup.start();
    CHECK_THROWS_WITH_AS(sup.set_remote_pool({.url = "redis://127.0.0.1:6379", .ns = "x"}), off.c_str(), at::Error);
    CHECK_THROWS_WITH_AS((void)at::serve_remote({}), off.c_str(), at::Error);
    at::TaskOptions o;
    o.supervisor = &sup;
    o.type = at::TaskType::remote;
    CHECK_THROWS_WITH_AS((void)at::background_task(square, o)(3), off.c_str(), at::Error);
    // The other lanes work as ever.
    o.type = std::nullopt;
    CHECK(at::background_task([] { return 7; }, o)().get() == 7);
}
