#pragma once
// What a library built without the remote lane says when asked for it.

namespace atasker::detail {

/// The message of the Error that set_remote_pool(), serve_remote() and a
/// remote task's put throw where the remote lane is not built.
inline constexpr const char* remote_off_message =
    "atasker was built without the remote lane (hiredis was not found); install libhiredis-dev "
    "(scripts/install-deps.sh) and build again with -Dremote=enabled";

}  // namespace atasker::detail
