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
/// ARGV: group, consumer, how many entries at most, whether to sweep ("1"
/// or "0"), the lease in milliseconds, max_deliveries, the namespace's key
/// prefix (`at:{ns}:`), seconds a failed task's reply is kept (its hash: as
/// its client's `keep` field says, as the complete script keeps it).
///
/// Stream by stream, most urgent first, while room is left: when sweeping,
/// takes over the entries another consumer left silent for a whole lease
/// (XAUTOCLAIM: older than any new entry of that stream), then reads new
/// ones. A taken-over entry delivered more than max_deliveries times is not
/// returned: it fails as poison there and then, as the complete script
/// would fail it. Nor is an entry its client canceled (its cancel key
/// exists): acknowledged and deleted, it never runs. Returns {1, {{stream
/// index (1-based), entry id, {field, value, ...}, deliveries}, ...}}, or,
/// when there is nothing to run,
/// {0, {last generated id of each stream}, entries pending in the group}:
/// the ids a blocking XREAD waits after, so that an entry added since is
/// seen, and whether any worker holds a task a sweep may have to take over.
inline constexpr std::string_view fetch = R"lua(
local group, consumer = ARGV[1], ARGV[2]
local want = tonumber(ARGV[3])
local max_deliveries = tonumber(ARGV[6])
local out = {}
local function fields(e)
  local f = {}
  for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end
  return f
end
-- The task's key of `kind` (task, cancel), as RemoteKeys makes it.
local function task_key(kind, f)
  return ARGV[7] .. kind .. ':' .. (f['client'] or '') .. ':' .. (f['id'] or '')
end
local function drop(stream, e)
  redis.call('XACK', stream, group, e[1])
  redis.call('XDEL', stream, e[1])
end
-- Drops a canceled entry; false for one to run.
local function canceled(stream, e, f)
  if redis.call('EXISTS', task_key('cancel', f)) == 0 then return false end
  drop(stream, e)
  return true
end
for i = 1, #KEYS do
  if want <= 0 then break end
  if ARGV[4] == '1' then
    local claimed = redis.call('XAUTOCLAIM', KEYS[i], group, consumer, ARGV[5], '0-0', 'COUNT', want)
    for _, e in ipairs(claimed[2]) do
      local f = fields(e)
      local deliveries = redis.call('XPENDING', KEYS[i], group, e[1], e[1], 1)[1][4]
      if canceled(KEYS[i], e, f) then
        -- its client ended it already
      elseif deliveries <= max_deliveries then
        out[#out + 1] = {i, e[1], e[2], deliveries}
        want = want - 1
      else
        local error = string.format("the remote task '%s' was taken by %d workers and each went silent past its " ..
          "lease before it ended (max_deliveries = %d): it fails as poison and is not run again; look for what " ..
          "kills or freezes a worker that runs it", f['name'] or '?', deliveries - 1, max_deliveries)
        local task = task_key('task', f)
        local keep = tonumber(f['keep'] or ARGV[8]) or 0
        if keep > 0 then
          redis.call('HSET', task, 'status', 'failed', 'worker', consumer, 'error', error, 'deliveries', deliveries - 1)
          redis.call('EXPIRE', task, keep)
        end
        drop(KEYS[i], e)
        if f['client'] then
          local reply = ARGV[7] .. 'reply:' .. f['client']
          redis.call('XADD', reply, '*', 'id', f['id'] or '0', 'outcome', 'error', 'value', error, 'type', '')
          redis.call('EXPIRE', reply, ARGV[8])
        end
      end
    end
  end
  while want > 0 do
    local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', want, 'STREAMS', KEYS[i], '>')
    if not r then break end
    for _, e in ipairs(r[1][2]) do
      if not canceled(KEYS[i], e, fields(e)) then
        out[#out + 1] = {i, e[1], e[2], 1}
        want = want - 1
      end
    end
  end
end
if #out > 0 then return {1, out} end
local last = {}
local pending = 0
for i = 1, #KEYS do
  local info = redis.call('XINFO', 'STREAM', KEYS[i])
  for j = 1, #info, 2 do
    if info[j] == 'last-generated-id' then last[i] = info[j + 1] end
  end
  pending = pending + redis.call('XPENDING', KEYS[i], group)[1]
end
return {0, last, pending}
)lua";

/// A worker's lease renewal. KEYS: the priority streams. ARGV: group,
/// consumer, then triples (stream index, 1-based; entry id; the task's
/// cancel key). Each entry still pending for this consumer has its idle
/// time reset (a self-XCLAIM with JUSTID, which leaves the delivery count
/// alone); one that is no longer this consumer's is left alone: an
/// unconditional XCLAIM would steal back a task another worker took over.
/// Returns {positions of the triples (0-based) whose entry is no longer this
/// consumer's, positions of those whose client canceled them}: entry ids
/// alone would be ambiguous, as two streams may hold the same id.
inline constexpr std::string_view renew = R"lua(
local lost = {}
local canceled = {}
for j = 3, #ARGV, 3 do
  local stream = KEYS[tonumber(ARGV[j])]
  local p = redis.call('XPENDING', stream, ARGV[1], ARGV[j + 1], ARGV[j + 1], 1)
  if #p == 0 or p[1][2] ~= ARGV[2] then
    lost[#lost + 1] = (j - 3) / 3
  else
    redis.call('XCLAIM', stream, ARGV[1], ARGV[2], 0, ARGV[j + 1], 'JUSTID')
    if redis.call('EXISTS', ARGV[j + 2]) == 1 then canceled[#canceled + 1] = (j - 3) / 3 end
  end
end
return {lost, canceled}
)lua";

/// A worker's completion, all or nothing. KEYS: the priority stream, the
/// client's reply stream, the task's hash. ARGV: group, entry id, consumer,
/// the client's task id, outcome, value, exception type, seconds the reply
/// stream is kept, the worker's name, the entry's deliveries, seconds the
/// hash is kept (the client's retention; 0: not kept). Still the owner of
/// the entry? Then: the hash records the outcome, the entry is acknowledged
/// and deleted, the reply goes to the client. Returns 1, or 0 when the
/// entry is no longer this consumer's (its result is dropped).
inline constexpr std::string_view complete = R"lua(
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
local status = 'failed'
if ARGV[5] == 'ok' then status = 'completed' elseif ARGV[5] == 'canceled' then status = 'canceled' end
local error = ''
if ARGV[5] ~= 'ok' then error = ARGV[6] end
if tonumber(ARGV[11]) > 0 then
  redis.call('HSET', KEYS[3], 'status', status, 'worker', ARGV[9], 'error', error, 'deliveries', ARGV[10])
  redis.call('EXPIRE', KEYS[3], ARGV[11])
else
  redis.call('DEL', KEYS[3])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], '*', 'id', ARGV[4], 'outcome', ARGV[5], 'value', ARGV[6], 'type', ARGV[7],
  'worker', ARGV[9], 'attempts', ARGV[10])
redis.call('EXPIRE', KEYS[2], ARGV[8])
return 1
)lua";

/// The namespace's tasks. KEYS: the tasks hash (name -> signature). ARGV:
/// this worker's names and signatures, in pairs. The first worker stores
/// its own; every one gets the stored pairs back to compare with its own.
inline constexpr std::string_view registry = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then
  for i = 1, #ARGV, 1000 do
    redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
return redis.call('HGETALL', KEYS[1])
)lua";

}  // namespace atasker::detail::remote_scripts
