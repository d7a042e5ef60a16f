package cache

import "github.com/redis/go-redis/v9"

// The cache changes Redis only through these scripts, each of which runs
// atomically. Two of them build key names from the generation they read, so
// they need a single Redis (or one shard holding every key of the prefix),
// not a cluster that spreads keys by slot.

// fillScript stores a product loaded from the inner service unless that
// could put back a value older than one a writer has already invalidated.
//
// KEYS[1] generation key, KEYS[2] product key (in the caller's generation).
// ARGV[1] the caller's generation, ARGV[2] the token the caller saw before it
// loaded (the tombstone, or "" when the key was empty), ARGV[3] the loaded
// version, ARGV[4] the value, ARGV[5] the TTL in milliseconds.
//
// Returns {1, gen} when stored, {0, gen} when refused, {-1, gen} when the
// generation has moved on (the caller adopts gen).
var fillScript = redis.NewScript(`
local gen = redis.call('GET', KEYS[1]) or '0'
if gen ~= ARGV[1] then return {-1, gen} end
local cur = redis.call('GET', KEYS[2])
if cur then
  if string.sub(cur, 1, 1) == 'T' then
    -- Invalidated again since the caller looked: its load may predate the write.
    if cur ~= ARGV[2] then return {0, gen} end
  else
    -- Another caller stored first; only a newer version replaces it.
    local v = tonumber(string.match(cur, '^V(%d+)'))
    if v and v >= tonumber(ARGV[3]) then return {0, gen} end
  end
elseif ARGV[2] ~= '' then
  -- The caller's tombstone is gone: refuse rather than reason about why.
  return {0, gen}
end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
return {1, gen}
`)

// invalidateScript replaces a product's value with a fresh tombstone, in the
// current generation and the one before (an instance that has not yet heard
// of a new generation still reads there), and tells every instance with an
// in-process tier to drop the product.
//
// KEYS[1] generation key, KEYS[2] registry of in-process tiers (member:
// instance id, score: lease end in Redis milliseconds).
// ARGV[1] product key prefix, ARGV[2] product id, ARGV[3] tombstone,
// ARGV[4] TTL in milliseconds, ARGV[5] channel prefix, ARGV[6] message, or
// "" to tell no tier.
//
// Returns {gen, instances told, milliseconds until the last lease of an
// instance that could not be told runs out}.
var invalidateScript = redis.NewScript(`
local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('SET', ARGV[1] .. gen .. ':' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
if gen > 0 then
  redis.call('SET', ARGV[1] .. (gen - 1) .. ':' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
end
if ARGV[6] == '' then return {gen, 0, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local members = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
local told, wait = 0, 0
for i = 1, #members, 2 do
  if redis.call('PUBLISH', ARGV[5] .. members[i], ARGV[6]) > 0 then
    told = told + 1
  else
    local w = tonumber(members[i + 1]) - now
    if w > wait then wait = w end
  end
end
return {gen, told, wait}
`)

// recoverScript runs when an instance has Redis back after an outage and
// returns the generation to use. Values written before the outage may miss
// invalidations that failed during it, so the generation moves on (which
// abandons every older value) unless another instance has already moved it
// since this one last knew it.
//
// KEYS[1] generation key. ARGV[1] the generation this instance last used, or
// -1; ARGV[2] "1" to move on regardless (this instance lost invalidations);
// ARGV[3] the events channel.
var recoverScript = redis.NewScript(`
local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
local known = tonumber(ARGV[1])
if ARGV[2] == '1' or gen <= known then
  gen = math.max(gen, known) + 1
  redis.call('SET', KEYS[1], gen)
  redis.call('PUBLISH', ARGV[3], 'g ' .. gen)
end
return gen
`)

// leaseScript registers or renews an instance's in-process tier until
// ARGV[2] milliseconds from now, by Redis's clock.
//
// KEYS[1] registry. ARGV[1] instance id, ARGV[2] lease in milliseconds.
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return now
`)
