/**
 * Lua scripts of the Redis queue. Each runs atomically on the server, so a claim, an ack guard or
 * a requeue of lost claims can never interleave with another consumer's. Time comes from the
 * server (TIME), so consumers with skewed clocks agree on when a claim has lapsed.
 *
 * Key layout for topic T (all scripts receive the same KEYS, in this order):
 *   KEYS[1] T              list of ready item ids, oldest at the head (`LLEN T` = backlog)
 *   KEYS[2] T:items        hash id -> payload bytes
 *   KEYS[3] T:deliveries   hash id -> times claimed
 *   KEYS[4] T:claims       hash id -> claim token "deliveries|nonce|consumerId"
 *   KEYS[5] T:deadlines    sorted set id -> claim deadline (server ms)
 *   KEYS[6] T:consumers    set of consumer ids that may hold items
 *   KEYS[7] T:seq          id counter
 * and per consumer C: T:processing:C (list of ids C moved out of T) and T:alive:C (liveness key
 * with a TTL, refreshed while C's process runs). ARGV[1] is always T, ARGV[2] a consumer id or ''.
 * Per-consumer keys are built inside the scripts, which standalone Redis allows (not Cluster).
 */
import { LuaScript } from './connection.js';

/** Key names for a topic, in the order the scripts expect them. */
export function queueKeys(topic: string): string[] {
  return [
    topic,
    `${topic}:items`,
    `${topic}:deliveries`,
    `${topic}:claims`,
    `${topic}:deadlines`,
    `${topic}:consumers`,
    `${topic}:seq`,
  ];
}

/** Channel on which acks announce freed space to producers held by backpressure. */
export function freedChannel(topic: string): string {
  return `${topic}:freed`;
}

/** Processing list of one consumer. */
export function processingKey(topic: string, consumerId: string): string {
  return `${topic}:processing:${consumerId}`;
}

/** Liveness key of one consumer. */
export function aliveKey(topic: string, consumerId: string): string {
  return `${topic}:alive:${consumerId}`;
}

const PRELUDE = `
local prefix = ARGV[1]
local function processing_key(c) return prefix .. ':processing:' .. c end
local function alive_key(c) return prefix .. ':alive:' .. c end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function owner_of(token)
  return string.match(token, '^[^|]*|[^|]*|(.*)$')
end

-- Put ids back at the head of the ready list, lowest (oldest) id first.
local function requeue(ids)
  table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
  for i = #ids, 1, -1 do redis.call('LPUSH', KEYS[1], ids[i]) end
end

-- Return lost claims to the queue: every item of a consumer whose liveness key lapsed, and every
-- claim past its deadline. Returns ms until the next claim or other consumer's liveness may lapse
-- (-1: nothing pending), so a blocked claimer knows when to look again.
local function sweep(now, self)
  local back = {}
  local wake = -1
  local function soonest(ms) if wake < 0 or ms < wake then wake = ms end end
  for _, c in ipairs(redis.call('SMEMBERS', KEYS[6])) do
    local plist = processing_key(c)
    local ttl = redis.call('PTTL', alive_key(c))
    if ttl < 0 then
      for _, id in ipairs(redis.call('LRANGE', plist, 0, -1)) do
        redis.call('HDEL', KEYS[4], id)
        redis.call('ZREM', KEYS[5], id)
        if redis.call('HEXISTS', KEYS[2], id) == 1 then back[#back + 1] = id end
      end
      redis.call('DEL', plist)
      redis.call('SREM', KEYS[6], c)
    elseif c ~= self and redis.call('LLEN', plist) > 0 then
      soonest(ttl)
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)) do
    local token = redis.call('HGET', KEYS[4], id)
    redis.call('ZREM', KEYS[5], id)
    redis.call('HDEL', KEYS[4], id)
    if token and redis.call('LREM', processing_key(owner_of(token)), 1, id) > 0 then
      back[#back + 1] = id
    end
  end
  local first = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  if first[2] then soonest(tonumber(first[2]) - now) end
  requeue(back)
  return wake
end
`;

/** ARGV[3] maxDepth, ARGV[4] payload. Returns the new id (decimal string), or nil when full. */
export const ENQUEUE = new LuaScript(`
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then return false end
local id = string.format('%d', redis.call('INCR', KEYS[7]))
redis.call('HSET', KEYS[2], id, ARGV[4])
redis.call('RPUSH', KEYS[1], id)
return id
`);

/**
 * ARGV[3] max, ARGV[4] claim TTL ms, ARGV[5] liveness ms, ARGV[6] nonce, ARGV[7] id that BLMOVE
 * just moved into this consumer's processing list ('' if none).
 * Returns { wakeMs, id1, payload1, deliveries1, token1, id2, ... }.
 */
export const CLAIM = new LuaScript(`${PRELUDE}
local self = ARGV[2]
local now = now_ms()
local wake = sweep(now, self)
redis.call('SET', alive_key(self), '1', 'PX', ARGV[5])
redis.call('SADD', KEYS[6], self)
local plist = processing_key(self)
local max = tonumber(ARGV[3])
local deadline = now + tonumber(ARGV[4])
local out = { wake }
local count = 0
local function hand_out(id)
  local payload = redis.call('HGET', KEYS[2], id)
  if not payload then
    redis.call('LREM', plist, 1, id)
    return
  end
  local d = redis.call('HINCRBY', KEYS[3], id, 1)
  local token = d .. '|' .. ARGV[6] .. '|' .. self
  redis.call('HSET', KEYS[4], id, token)
  redis.call('ZADD', KEYS[5], deadline, id)
  out[#out + 1] = id
  out[#out + 1] = payload
  out[#out + 1] = d
  out[#out + 1] = token
  count = count + 1
end
-- Unclaimed ids in this consumer's processing list go out first: the one BLMOVE just moved (ARGV[7])
-- and any a BLMOVE moved while its reply was lost, which no sweep returns while the consumer lives.
for _, id in ipairs(redis.call('LRANGE', plist, 0, -1)) do
  if count >= max then break end
  if redis.call('HEXISTS', KEYS[4], id) == 0 then hand_out(id) end
end
while count < max do
  local id = redis.call('LMOVE', KEYS[1], plist, 'LEFT', 'RIGHT')
  if not id then break end
  hand_out(id)
end
return out
`);

/**
 * ARGV[3] id, ARGV[4] claim token, ARGV[5] 'ack' | 'release', ARGV[6] freed channel.
 * Returns 1 when the claim still held and the item was removed (ack) or put back (release), else 0.
 */
export const SETTLE = new LuaScript(`${PRELUDE}
sweep(now_ms(), '')
local id = ARGV[3]
if redis.call('HGET', KEYS[4], id) ~= ARGV[4] then return 0 end
redis.call('LREM', processing_key(owner_of(ARGV[4])), 1, id)
redis.call('HDEL', KEYS[4], id)
redis.call('ZREM', KEYS[5], id)
if ARGV[5] == 'ack' then
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('PUBLISH', ARGV[6], id)
else
  redis.call('LPUSH', KEYS[1], id)
end
return 1
`);

/**
 * A consumer starting up takes back whatever an earlier process with its id left in its
 * processing list. Returns how many items went back to the queue.
 */
export const RECOVER = new LuaScript(`${PRELUDE}
local plist = processing_key(ARGV[2])
local back = {}
for _, id in ipairs(redis.call('LRANGE', plist, 0, -1)) do
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  if redis.call('HEXISTS', KEYS[2], id) == 1 then back[#back + 1] = id end
end
redis.call('DEL', plist)
requeue(back)
return #back
`);
