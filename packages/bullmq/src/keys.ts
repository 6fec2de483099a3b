import { jobIdOf, QUEUE_NAME } from './queue.js';

/**
 * The Redis keys of one prefix. BullMQ's own keys are `<prefix>:tasks:*`. Each starts with the
 * prefix, so a hash tag in it puts them all in one slot of a Redis Cluster (see PREFIX in options.ts).
 */
export function keysOf(prefix: string) {
  return {
    /**
     * Hash per task: `v` version, `w` the token of the write that made it, `s` status, `r` record
     * JSON (without payload), `p` payload JSON (without body), `b` the body's bytes, `n` the insert's
     * token. Records written before `b` keep the body in `p`, in base64; before `w`, have none.
     */
    task: (taskId: string) => `${prefix}:task:${taskId}`,
    /** Sorted set of every task id, scored by `startedTime`: listing. */
    byTime: `${prefix}:by-time`,
    /** Set of task ids not terminal, or terminal with a destination call pending. */
    open: `${prefix}:open`,
    /** Sorted set of finished task ids, scored by `endTime`: retention. */
    ended: `${prefix}:ended`,
    /** Pub/sub channel of stop requests (message: the task id). */
    stop: `${prefix}:stop`,
    /**
     * BullMQ's stream of its queue's events (a job added, taken, retried, ended, removed), which it
     * writes whatever reads it, trimmed to its last 10,000 or so: the dashboard follows it.
     */
    events: `${prefix}:${QUEUE_NAME}:events`,
    /** BullMQ's hash of the task's job (see jobIdOf): there while the job is, whatever its state. */
    job: (taskId: string) => `${prefix}:${QUEUE_NAME}:${jobIdOf(taskId)}`,
  };
}

export type Keys = ReturnType<typeof keysOf>;

/** Moves the task between `open` and `ended` (KEYS[2], KEYS[3]; ARGV[1] id, ARGV[5] open, ARGV[6] end time). */
const INDEX = `
local function index()
  if ARGV[5] == '1' then
    redis.call('SADD', KEYS[2], ARGV[1])
    redis.call('ZREM', KEYS[3], ARGV[1])
  else
    redis.call('SREM', KEYS[2], ARGV[1])
    redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
  end
end
`;

/**
 * Publishes a stop on the stop channel (KEYS[1]; ARGV[1] the task id). A script for where it runs:
 * a Redis Cluster runs it on the node owning the channel's slot, the prefix's, which the stop's
 * write has just reached, and forwards what it publishes to every node. A plain PUBLISH names no
 * key, and ioredis's Cluster sends it to any node: to a lost one or a frozen one, where it failed
 * or waited `commandTimeoutMs`.
 */
export const PUBLISH_SCRIPT = `return redis.call('PUBLISH', KEYS[1], ARGV[1])`;

/**
 * KEYS: task, open, ended, byTime, the task's job. ARGV: id, started time, status, record, open,
 * end time, payload, body, insert token. Returns 1, or 0 when the id is taken. A task holding this
 * insert's token is this very insert run again (ioredis resends a script whose reply a dropped
 * connection lost): 1, so that the accepted task is not answered 409. A task the queue refused
 * (`Invalid`) is replaced, its hash and index entries with it (see TaskStore.insert), unless a job
 * of its id is still in the queue: an `enqueue` whose reply was lost may have added it, and BullMQ
 * would take the new task's job for that one (a duplicate id), which may be ending with the
 * refused task, leaving the new one with no job. Its id is taken until that job is gone.
 */
export const INSERT_SCRIPT = `${INDEX}
if redis.call('EXISTS', KEYS[1]) == 1 then
  local held = redis.call('HMGET', KEYS[1], 'n', 's')
  if held[1] == ARGV[9] then return 1 end
  if held[2] ~= 'Invalid' or redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'v', '1', 'w', ARGV[9], 's', ARGV[3], 'r', ARGV[4], 'p', ARGV[7], 'b', ARGV[8], 'n', ARGV[9])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
index()
return 1
`;

/**
 * Several inserts at once (the accepts of one turn of the event loop). KEYS: open, ended,
 * byTime, then per task its key and its job's. ARGV: per task, in order: id, started time, status,
 * record, open, end time, payload, body, insert token. Returns a 1 or 0 per task, as INSERT_SCRIPT
 * does (an `Invalid` task replaced as there).
 */
export const INSERT_MANY_SCRIPT = `
local added = {}
for t = 4, #KEYS, 2 do
  local a = (t - 4) / 2 * 9
  local id = ARGV[a + 1]
  local take = redis.call('EXISTS', KEYS[t]) == 0
  if not take then
    local held = redis.call('HMGET', KEYS[t], 'n', 's')
    if held[1] == ARGV[a + 9] then
      added[#added + 1] = 1
    elseif held[2] == 'Invalid' and redis.call('EXISTS', KEYS[t + 1]) == 0 then
      redis.call('DEL', KEYS[t])
      take = true
    else
      added[#added + 1] = 0
    end
  end
  if take then
    local n = ARGV[a + 9]
    redis.call('HSET', KEYS[t], 'v', '1', 'w', n, 's', ARGV[a + 3], 'r', ARGV[a + 4], 'p', ARGV[a + 7], 'b', ARGV[a + 8], 'n', n)
    redis.call('ZADD', KEYS[3], ARGV[a + 2], id)
    if ARGV[a + 5] == '1' then
      redis.call('SADD', KEYS[1], id)
      redis.call('ZREM', KEYS[2], id)
    else
      redis.call('SREM', KEYS[1], id)
      redis.call('ZADD', KEYS[2], ARGV[a + 6], id)
    end
    added[#added + 1] = 1
  end
end
return added
`;

/**
 * Compare-and-set on the version and the token of the write that made it: versions start again at
 * 1 when a task id is deleted and accepted again, tokens never repeat. KEYS: task, open, ended.
 * ARGV: id, expected version, status, record, open, end time, expected token, this write's token.
 * Returns {1} when written, {-1} when the task is gone, or {0, version, token, record, payload,
 * body} when it changed since it was read.
 */
export const CAS_SCRIPT = `${INDEX}
local seen = redis.call('HMGET', KEYS[1], 'v', 'w')
local v = seen[1]
if not v then return {-1} end
local w = seen[2] or ''
if v ~= ARGV[2] or w ~= ARGV[7] then
  local current = redis.call('HMGET', KEYS[1], 'r', 'p', 'b')
  return {0, v, w, current[1], current[2], current[3]}
end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(v) + 1), 'w', ARGV[8], 's', ARGV[3], 'r', ARGV[4])
index()
return {1}
`;

/**
 * Deletes finished tasks, each only while it is still in `ended`: another instance may have
 * deleted it since it was read, and the id been accepted again. KEYS: ended, byTime, then one task
 * key per task. ARGV: the task ids, in the same order. Returns how many it deleted.
 */
export const PRUNE_SCRIPT = `
local deleted = 0
for t = 3, #KEYS do
  local id = ARGV[t - 2]
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('DEL', KEYS[t])
    redis.call('ZREM', KEYS[2], id)
    deleted = deleted + 1
  end
end
return deleted
`;

/**
 * One stretch of ListAsyncTasks' walk of the time index, filtered in Redis, so that a filter that
 * matches little costs neither a round trip per few hundred ids nor the records of the tasks it
 * does not match (a status is read alone first). Bounded, so that Redis is held a few
 * milliseconds at most: it looks at `scan` ids at most (the cursor's millisecond is read whole,
 * as before) and stops at the `want`-th match. The task keys are built from ARGV, as BullMQ's
 * own scripts build theirs: from the prefix, so in the slot of KEYS[1] when it has a hash tag.
 *
 * KEYS: byTime. ARGV: the task key's prefix (`keys.task('')`), '1' for newest first, the score
 * bounds to read from and to (in the walk's direction, excluding the cursor's millisecond), the
 * cursor's time and id ('' for none: the ids of its millisecond past it come first, in byte
 * order, as the index sorts them), the task-id prefix and the status ('' for any), want, scan,
 * '1' to read the payload too.
 *
 * Returns {state, time, id, then per match: id, r, p, b}: state 'full' once `want` matched, 'end'
 * once the range has no more ids, else 'more' (the scan was spent; time and id: the last id
 * looked at, where the next stretch goes on from). A task's status and record are read in the
 * same script run, so a listed record has the status asked for.
 */
export const LIST_SCRIPT = `
local task, desc, from, to = ARGV[1], ARGV[2] == '1', ARGV[3], ARGV[4]
local atTime, atId, prefix, status = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local want, budget, payload = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11] == '1'
local plen = #prefix
local out = {'more', atTime, atId}
local found = 0
-- Whether the task of this id (its prefix checked) matches: its record is then added to the reply.
local function match(id)
  local key = task .. id
  if status ~= '' and redis.call('HGET', key, 's') ~= status then return false end
  local h
  if payload then h = redis.call('HMGET', key, 's', 'r', 'p', 'b') else h = redis.call('HMGET', key, 's', 'r') end
  if not h[2] or (status ~= '' and h[1] ~= status) then return false end
  out[#out + 1] = id
  out[#out + 1] = h[2]
  out[#out + 1] = h[3] or false
  out[#out + 1] = h[4] or false
  found = found + 1
  return true
end
-- Byte order, as the index sorts equal times (Lua's < on strings follows the server's locale).
local function below(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
if atTime ~= '' then
  local tied = redis.call('ZRANGE', KEYS[1], atTime, atTime, 'BYSCORE')
  -- The first of the millisecond's ids past the cursor (a binary search).
  local lo, hi = 1, #tied + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if below(atId, tied[mid]) then hi = mid else lo = mid + 1 end
  end
  local first, last, step = lo, #tied, 1
  if desc then
    first, last, step = lo - 1, 1, -1
    if first >= 1 and tied[first] == atId then first = first - 1 end
  end
  for i = first, last, step do
    if budget <= 0 then return out end
    budget = budget - 1
    local id = tied[i]
    out[3] = id
    if (plen == 0 or string.sub(id, 1, plen) == prefix) and match(id) and found >= want then
      out[1] = 'full'
      return out
    end
  end
end
if budget <= 0 then return out end
local ids
if desc then
  ids = redis.call('ZRANGE', KEYS[1], from, to, 'BYSCORE', 'REV', 'LIMIT', 0, budget)
else
  ids = redis.call('ZRANGE', KEYS[1], from, to, 'BYSCORE', 'LIMIT', 0, budget)
end
for i = 1, #ids do
  local id = ids[i]
  if (plen == 0 or string.sub(id, 1, plen) == prefix) and match(id) and found >= want then
    out[1] = 'full'
    return out
  end
end
if #ids < budget then
  out[1] = 'end'
elseif #ids > 0 then
  out[3] = ids[#ids]
  out[2] = redis.call('ZSCORE', KEYS[1], out[3])
end
return out
`;
