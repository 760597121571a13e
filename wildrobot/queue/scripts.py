"""Lua scripts: every job state change is one atomic script, and every worker write is fenced.

The fencing token is the job's `attempt`: a worker write carries the attempt it was given when it
took the job and is refused (returns "stale") unless the record still has that attempt and is
RUNNING or CANCELLING. Times come from the Redis clock (`TIME`), so front ends and workers never
compare their own clocks. Scripts return flat arrays whose first item is a status word.
"""

from __future__ import annotations

from wildrobot.queue import keys

_PRELUDE = (
    f"""
local TENANT_PREFIX = '{keys.TENANT_KEY_PREFIX}'
local FINISHED = '{keys.FINISHED}'
"""
    + """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function emit(jobkey, evkey, maxlen, etype, ts, data)
  local seq = redis.call('HINCRBY', jobkey, 'last_seq', 1)
  redis.call('XADD', evkey, 'MAXLEN', '~', maxlen, seq .. '-0', 't', etype, 'ts', ts, 'd', data)
  return seq
end
-- Every state change passes here: the tenant's queued/running sets and the finished zset follow.
local function track(jobkey, state, ts)
  local v = redis.call('HMGET', jobkey, 'job_id', 'tenant')
  local queued = TENANT_PREFIX .. v[2] .. ':queued'
  local running = TENANT_PREFIX .. v[2] .. ':running'
  redis.call('SREM', queued, v[1])
  redis.call('SREM', running, v[1])
  if state == 'PENDING' or state == 'RECOVERING' then
    redis.call('SADD', queued, v[1])
  elseif state == 'RUNNING' or state == 'CANCELLING' then
    redis.call('SADD', running, v[1])
  else
    redis.call('ZADD', FINISHED, ts, v[1])
  end
end
local function emit_state(jobkey, evkey, maxlen, ts, state, attempt, reason)
  track(jobkey, state, ts)
  return emit(jobkey, evkey, maxlen, 'state', ts,
    cjson.encode({state = state, attempt = tonumber(attempt), reason = reason}))
end
local function fenced(jobkey, attempt)
  local v = redis.call('HMGET', jobkey, 'state', 'attempt')
  return v[2] == attempt and (v[1] == 'RUNNING' or v[1] == 'CANCELLING')
end
-- A write retried after its reply was lost (Redis restarted under it) is applied once: every
-- writer numbers its writes ("<writer>:<n>", increasing); one already applied changes nothing.
local function seen(jobkey, wid)
  local sep = string.find(wid, ':', 1, true)
  if not sep then return false end
  local field = 'w:' .. string.sub(wid, 1, sep - 1)
  local n = tonumber(string.sub(wid, sep + 1))
  if n <= tonumber(redis.call('HGET', jobkey, field) or '0') then return true end
  redis.call('HSET', jobkey, field, n)
  return false
end
local function enqueue(jobkey, queuekey, queue_maxlen, job_id)
  local msg = redis.call('XADD', queuekey, 'MAXLEN', '~', queue_maxlen, '*', 'job_id', job_id)
  redis.call('HSET', jobkey, 'queue_msg', msg)
  return msg
end
"""
)

# KEYS: job, idem, idx_tenant, idx_tenant_kind, queue, events, submit_seq
# ARGV: job_id, tenant, kind, name, spec_json, steps_total, request_id, idem_ttl_s,
#       events_maxlen, queue_maxlen, max_pending (0: none)
# KEYS[8]: the tenant's queued set. Returns {'quota', <queued now>} when the tenant is at its cap.
SUBMIT = (
    _PRELUDE
    + """
if ARGV[7] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {'exists', existing} end
end
local cap = tonumber(ARGV[11])
if cap > 0 then
  local queued = redis.call('SCARD', KEYS[8])
  if queued >= cap then return {'quota', tostring(queued)} end
end
local now = now_ms()
local order = redis.call('INCR', KEYS[7])
redis.call('HSET', KEYS[1], 'job_id', ARGV[1], 'tenant', ARGV[2], 'kind', ARGV[3],
  'name', ARGV[4], 'spec', ARGV[5], 'steps_total', ARGV[6], 'request_id', ARGV[7],
  'state', 'PENDING', 'attempt', 0, 'lost', 0, 'created_at', now, 'updated_at', now,
  'last_seq', 0, 'steps_done', 0, 'order', order)
redis.call('ZADD', KEYS[3], order, ARGV[1])
redis.call('ZADD', KEYS[4], order, ARGV[1])
if ARGV[7] ~= '' then redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[8]) end
emit_state(KEYS[1], KEYS[6], ARGV[9], now, 'PENDING', 0, 'submitted')
enqueue(KEYS[1], KEYS[5], ARGV[10], ARGV[1])
return {'created', ARGV[1]}
"""
)

# The entry is acknowledged and deleted (XDEL) whatever happens: the stream holds only waiting
# work. A tenant at its running quota keeps its job queued: a fresh entry at the tail. So does a
# job this worker does not take by its host count (ARGV[9], workers.config `multihost`: 'take'
# any, 'skip' num_hosts > 1, take 'only' num_hosts > 1), for another worker to take.
# KEYS: job, events, leases, queue
# ARGV: job_id, owner, lease_ms, msg_id, group, events_maxlen, max_running (0: none),
#       queue_maxlen, multihost
TAKE = (
    _PRELUDE
    + """
redis.call('XACK', KEYS[4], ARGV[5], ARGV[4])
redis.call('XDEL', KEYS[4], ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'state', 'started_at', 'tenant', 'queue_msg')
if not v[1] then return {'gone'} end
if v[1] ~= 'PENDING' and v[1] ~= 'RECOVERING' then return {'skip', v[1]} end
if v[4] ~= ARGV[4] then return {'skip', 'superseded entry'} end
if ARGV[9] ~= 'take' then
  local ok, spec = pcall(cjson.decode, redis.call('HGET', KEYS[1], 'spec') or '{}')
  local hosts = ok and type(spec) == 'table' and tonumber(spec['num_hosts']) or 1
  if (ARGV[9] == 'skip') == (hosts > 1) then
    enqueue(KEYS[1], KEYS[4], ARGV[8], ARGV[1])
    return {'elsewhere', tostring(hosts)}
  end
end
local cap = tonumber(ARGV[7])
if cap > 0 and redis.call('SCARD', TENANT_PREFIX .. v[3] .. ':running') >= cap then
  enqueue(KEYS[1], KEYS[4], ARGV[8], ARGV[1])
  return {'quota', v[3]}
end
local now = now_ms()
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
local expires = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'state', 'RUNNING', 'lease_owner', ARGV[2],
  'lease_expires', expires, 'updated_at', now, 'queue_msg', '')
if not v[2] then redis.call('HSET', KEYS[1], 'started_at', now) end
redis.call('ZADD', KEYS[3], expires, ARGV[1])
emit_state(KEYS[1], KEYS[2], ARGV[6], now, 'RUNNING', attempt, 'taken by ' .. ARGV[2])
return {'ok', tostring(attempt)}
"""
)

# KEYS: job, leases
# ARGV: job_id, attempt, lease_ms
RENEW = (
    _PRELUDE
    + """
if not fenced(KEYS[1], ARGV[2]) then return {'stale'} end
local expires = now_ms() + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'lease_expires', expires)
redis.call('ZADD', KEYS[2], expires, ARGV[1])
return {'ok', redis.call('HGET', KEYS[1], 'state')}
"""
)

# The event goes to the capped event stream (what WatchJob reads) and, under the same seq, to
# the job's metric history (what the dashboard's curves read), in one fenced write.
# KEYS: job, events, metrics
# ARGV: attempt, step, steps_per_second, last_metrics_json, event_json, events_maxlen,
#       metrics_maxlen, write_id
METRICS = (
    _PRELUDE
    + """
if not fenced(KEYS[1], ARGV[1]) then return {'stale'} end
if seen(KEYS[1], ARGV[8]) then return {'ok', '0'} end
local now = now_ms()
redis.call('HSET', KEYS[1], 'steps_done', ARGV[2], 'steps_per_second', ARGV[3],
  'last_metrics', ARGV[4], 'updated_at', now)
local seq = emit(KEYS[1], KEYS[2], ARGV[6], 'metrics', now, ARGV[5])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], seq .. '-0', 'ts', now, 'd', ARGV[5])
return {'ok', tostring(seq)}
"""
)

# KEYS: job, events, ckpt
# ARGV: attempt, step, info_json, events_maxlen, write_id
CHECKPOINT = (
    _PRELUDE
    + """
if not fenced(KEYS[1], ARGV[1]) then return {'stale'} end
if seen(KEYS[1], ARGV[5]) then return {'ok', '0'} end
local now = now_ms()
local info = cjson.decode(ARGV[3])
info['created_at_ms'] = now
local encoded = cjson.encode(info)
redis.call('HSET', KEYS[3], ARGV[2], encoded)
redis.call('HSET', KEYS[1], 'last_checkpoint', ARGV[2], 'updated_at', now)
return {'ok', tostring(emit(KEYS[1], KEYS[2], ARGV[4], 'checkpoint', now, encoded))}
"""
)

# KEYS: job, events
# ARGV: attempt, event_json, events_maxlen, write_id
LOG = (
    _PRELUDE
    + """
if not fenced(KEYS[1], ARGV[1]) then return {'stale'} end
if seen(KEYS[1], ARGV[4]) then return {'ok', '0'} end
return {'ok', tostring(emit(KEYS[1], KEYS[2], ARGV[3], 'log', now_ms(), ARGV[2]))}
"""
)

# The worker's last word on an attempt.
# KEYS: job, events, leases, queue
# ARGV: job_id, attempt, outcome (SUCCEEDED|FAILED|CANCELLED|RELEASE|LOST), reason,
#       max_retries, events_maxlen, queue_maxlen
# RELEASE (worker shutting down) re-queues without using a retry; LOST (the runner died) uses one.
FINISH = (
    _PRELUDE
    + """
if not fenced(KEYS[1], ARGV[2]) then return {'stale'} end
local now = now_ms()
local outcome = ARGV[3]
local state = redis.call('HGET', KEYS[1], 'state')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'lease_owner', '', 'lease_expires', 0, 'updated_at', now)
if (outcome == 'RELEASE' or outcome == 'LOST') and state == 'CANCELLING' then
  outcome = 'CANCELLED'
end
if outcome == 'LOST' then
  local lost = redis.call('HINCRBY', KEYS[1], 'lost', 1)
  if lost > tonumber(ARGV[5]) then
    outcome = 'FAILED'
  end
end
if outcome == 'RELEASE' or outcome == 'LOST' then
  redis.call('HSET', KEYS[1], 'state', 'RECOVERING', 'error', ARGV[4])
  emit_state(KEYS[1], KEYS[2], ARGV[6], now, 'RECOVERING', ARGV[2], ARGV[4])
  enqueue(KEYS[1], KEYS[4], ARGV[7], ARGV[1])
  return {'ok', 'RECOVERING'}
end
redis.call('HSET', KEYS[1], 'state', outcome, 'finished_at', now, 'error', ARGV[4])
emit_state(KEYS[1], KEYS[2], ARGV[6], now, outcome, ARGV[2], ARGV[4])
return {'ok', outcome}
"""
)

# KEYS: job, events
# ARGV: tenant, events_maxlen
CANCEL = (
    _PRELUDE
    + """
local v = redis.call('HMGET', KEYS[1], 'tenant', 'state', 'attempt')
if not v[1] or v[1] ~= ARGV[1] then return {'notfound'} end
local state = v[2]
local now = now_ms()
if state == 'PENDING' or state == 'RECOVERING' then
  redis.call('HSET', KEYS[1], 'state', 'CANCELLED', 'finished_at', now, 'updated_at', now,
    'error', 'cancelled before it ran')
  emit_state(KEYS[1], KEYS[2], ARGV[2], now, 'CANCELLED', v[3], 'cancelled before it ran')
  return {'ok', 'CANCELLED'}
end
if state == 'RUNNING' then
  redis.call('HSET', KEYS[1], 'state', 'CANCELLING', 'updated_at', now)
  emit_state(KEYS[1], KEYS[2], ARGV[2], now, 'CANCELLING', v[3], 'cancel requested')
  return {'ok', 'CANCELLING'}
end
if state == 'CANCELLING' then return {'ok', 'CANCELLING'} end
return {'finished', state}
"""
)

# A lease that expired: re-queue as RECOVERING, or fail when retries run out.
# KEYS: job, events, leases, queue
# ARGV: job_id, max_retries, events_maxlen, queue_maxlen
REAP = (
    _PRELUDE
    + """
local v = redis.call('HMGET', KEYS[1], 'state', 'lease_expires', 'attempt')
if not v[1] or (v[1] ~= 'RUNNING' and v[1] ~= 'CANCELLING') then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'gone'}
end
local now = now_ms()
if tonumber(v[2] or '0') > now then return {'alive'} end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'lease_owner', '', 'lease_expires', 0, 'updated_at', now)
if v[1] == 'CANCELLING' then
  local reason = 'cancelled (worker lost before it stopped)'
  redis.call('HSET', KEYS[1], 'state', 'CANCELLED', 'finished_at', now, 'error', reason)
  emit_state(KEYS[1], KEYS[2], ARGV[3], now, 'CANCELLED', v[3], reason)
  return {'ok', 'CANCELLED'}
end
local lost = redis.call('HINCRBY', KEYS[1], 'lost', 1)
if lost > tonumber(ARGV[2]) then
  local reason = 'worker lost ' .. lost .. ' times (lease expired); retry limit ' .. ARGV[2] .. ' reached'
  redis.call('HSET', KEYS[1], 'state', 'FAILED', 'finished_at', now, 'error', reason)
  emit_state(KEYS[1], KEYS[2], ARGV[3], now, 'FAILED', v[3], reason)
  return {'ok', 'FAILED'}
end
local reason = 'lease of attempt ' .. v[3] .. ' expired (worker lost); re-queued'
redis.call('HSET', KEYS[1], 'state', 'RECOVERING', 'error', reason)
emit_state(KEYS[1], KEYS[2], ARGV[3], now, 'RECOVERING', v[3], reason)
enqueue(KEYS[1], KEYS[4], ARGV[4], ARGV[1])
return {'ok', 'RECOVERING'}
"""
)

# A queue entry a consumer read but never took (it died in between), claimed by the reaper.
# KEYS: job, queue
# ARGV: job_id, msg_id, group, queue_maxlen
ORPHAN = (
    _PRELUDE
    + """
redis.call('XACK', KEYS[2], ARGV[3], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'state', 'queue_msg')
if (v[1] == 'PENDING' or v[1] == 'RECOVERING') and v[2] == ARGV[2] then
  enqueue(KEYS[1], KEYS[2], ARGV[4], ARGV[1])
  return {'requeued'}
end
return {'acked'}
"""
)

# Retention: deletes a finished job's keys once its archive is written (the caller writes it
# first). Refused unless the job is still finished at the same time (nothing changed since).
# KEYS: job, events, metrics, ckpt, finished
# ARGV: job_id, finished_at
RETIRE = (
    _PRELUDE
    + """
local v = redis.call('HMGET', KEYS[1], 'state', 'finished_at', 'tenant', 'kind')
if not v[1] then
  redis.call('ZREM', KEYS[5], ARGV[1])
  return {'gone'}
end
if v[2] ~= ARGV[2] or v[1] == 'PENDING' or v[1] == 'RECOVERING' or v[1] == 'RUNNING'
   or v[1] == 'CANCELLING' then
  return {'changed'}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', '"""
    + keys.PREFIX
    + """:idx:' .. v[3], ARGV[1])
redis.call('ZREM', '"""
    + keys.PREFIX
    + """:idx:' .. v[3] .. ':' .. v[4], ARGV[1])
return {'ok'}
"""
)
