import { jobIdOf, QUEUE_NAME } from './queue.js';

/** The Redis keys of one prefix. BullMQ's own keys are `<prefix>:tasks:*`. */
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
