// set_remote_pool() and serve_remote() in a library built without the
// remote lane: each says so, and how to build it.

#include <atasker/error.hpp>
#include <atasker/remote.hpp>
#include <atasker/supervisor.hpp>

#include "remote/remote_off.hpp"

namespace atasker {

void TaskSupervisor::set_remote_pool(const RemotePoolOptions& /*options*/) { throw Error(detail::remote_off_message); }

int serve_remote(const ServeRemoteOptions& /*options*/) { throw Error(detail::remote_off_message); }

}  // namespace atasker
