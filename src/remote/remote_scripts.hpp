#pragma once
// The Lua scripts of the remote lane. Each runs atomically on the server and
// touches only keys it is given (all under one {ns} hash tag).

#include <string_view>

namespace atasker::detail::remote_scripts {

/// Creates the consumer group on each priority stream (KEYS), making the
/// streams; a group that exists is left as it is.
inline constexpr std::string_view create_groups = R"lua(
for i = 1, #KEYS do
  redis.pcall('XGROUP', 'CREATE', KEYS[i], ARGV[1], '0', 'MKSTREAM')
end
return #KEYS
)lua";

/// A worker's fetch. KEYS: the priority streams, most urgent first.
/// ARGV: group, consumer, how many entries at most. Reads the most urgent
/// stream first and goes on to the next while room is left. Returns
/// {1, {{stream index (1-based), entry id, {field, value, ...}}, ...}}, or,
/// when every stream is empty, {0, {last generated id of each stream}}: the
/// ids a blocking XREAD waits after, so that an entry added since is seen.
inline constexpr std::string_view fetch = R"lua(
local want = tonumber(ARGV[3])
local out = {}
for i = 1, #KEYS do
  if want <= 0 then break end
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want, 'STREAMS', KEYS[i], '>')
  if r then
    for _, e in ipairs(r[1][2]) do
      out[#out + 1] = {i, e[1], e[2]}
    end
    want = want - #r[1][2]
  end
end
if #out > 0 then return {1, out} end
local last = {}
for i = 1, #KEYS do
  local info = redis.call('XINFO', 'STREAM', KEYS[i])
  for j = 1, #info, 2 do
    if info[j] == 'last-generated-id' then last[i] = info[j + 1] end
  end
end
return {0, last}
)lua";

/// A worker's completion, all or nothing. KEYS: the priority stream, the
/// client's reply stream, the task's hash. ARGV: group, entry id, consumer,
/// the client's task id, outcome, value, exception type, seconds the hash
/// and the reply stream are kept, the worker's name. Still the owner of the
/// entry? Then: the hash records the outcome, the entry is acknowledged and
/// deleted, the reply goes to the client. Returns 1, or 0 when the entry is
/// no longer this consumer's (its result is dropped).
inline constexpr std::string_view complete = R"lua(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
local status = 'failed'
if ARGV[5] == 'ok' then status = 'completed' end
local error = ''
if ARGV[5] ~= 'ok' then error = ARGV[6] end
redis.call('HSET', KEYS[3], 'status', status, 'worker', ARGV[9], 'error', error)
redis.call('EXPIRE', KEYS[3], ARGV[8])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], '*', 'id', ARGV[4], 'outcome', ARGV[5], 'value', ARGV[6], 'type', ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[8])
return 1
)lua";

/// The namespace's task names. KEYS: the registry set. ARGV: this worker's
/// names. The first worker stores its names; every one gets the stored set
/// back to compare with its own.
inline constexpr std::string_view registry = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then
  for i = 1, #ARGV, 1000 do
    redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
return redis.call('SMEMBERS', KEYS[1])
)lua";

}  // namespace atasker::detail::remote_scripts
