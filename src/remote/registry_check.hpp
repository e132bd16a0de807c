#pragma once
// check_registry(): a worker host's check, at start and after each
// reconnection, that it runs the MpTasks its namespace runs: the same names,
// each with the same signature (the mangled type of R(A...)).

#include <string>

#include "remote/redis_connection.hpp"
#include "remote/remote_keys.hpp"

namespace atasker::detail {

/// Stores this binary's MpTasks, name to signature, in `keys.tasks()` when
/// the namespace has none yet, then compares them with the stored ones.
/// \throws Error naming every difference (tasks missing on either side,
/// signatures that differ, demangled) and what to do, with `where` the
/// server; an Error of the connection as RedisConnection::command().
void check_registry(RedisConnection& c, const RemoteKeys& keys, const std::string& where);

}  // namespace atasker::detail
