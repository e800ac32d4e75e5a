// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_functions.h: the Redis 7 Function library plangate's sync loads on
// every connection (FUNCTION LOAD REPLACE; Functions are also persisted and
// replicated, unlike the script cache).
//
// One hash per (subject, limit, window). Fields:
//   t          sum of every instance's cumulative usage (the cluster total)
//   L          sum of outstanding leases
//   n          number of instances that ever wrote the hash
//   xn, xl     set by the flush that first crossed the soft nudge / limit
//   c:<inst>   the instance's cumulative usage in the window
//   s:<inst>   the last sequence number applied for the instance
//   r:<inst>   the instance's outstanding lease
//   e:<inst>   when its lease expires (server clock, ms)
//
// pg1_sync KEYS[1]; ARGV inst seq cum expire_at_ms hard want ttl_ms nudge_at
// limit. A flush whose seq is not above s:<inst> changes nothing (a retry,
// or one overtaken by a later flush); otherwise t moves by cum - c:<inst>,
// so applying the same cumulative twice counts once, and a write Redis lost
// is restored by the next flush. Usage first eats into the instance's lease.
// want > 0 asks for a lease of up to `want` units, granted from
// hard - t - L and at most (hard - t - L) / (2 n), so leases shrink with
// the remainder; want < 0 returns the lease. Expired leases of other
// instances are reclaimed. Returns {t, lease, n, flags, L, stale} where
// flags bit 0 / bit 1 say this flush crossed the soft nudge / limit first.
//
// pg1_read KEYS...: {t, L, n} per key (read only; quotactl usage).

#ifndef PLANGATE_SYNC_REDIS_FUNCTIONS_H_
#define PLANGATE_SYNC_REDIS_FUNCTIONS_H_

namespace plangate::internal {

inline constexpr char kRedisFunctionLibrary[] = R"lua(#!lua name=plangate1

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Frees the leases of other instances whose expiry passed; returns units.
local function reclaim_expired(k, now, self)
  local all = redis.call('HGETALL', k)
  local freed = 0
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, 1, 2) == 'e:' and tonumber(all[i + 1]) < now then
      local inst = string.sub(f, 3)
      if inst ~= self then
        freed = freed + (tonumber(redis.call('HGET', k, 'r:' .. inst)) or 0)
        redis.call('HDEL', k, 'r:' .. inst, f)
      end
    end
  end
  return freed
end

local function sync(keys, args)
  local k = keys[1]
  local inst = args[1]
  local seq = tonumber(args[2])
  local cum = tonumber(args[3])
  local expire_at = tonumber(args[4])
  local hard = tonumber(args[5])
  local want = tonumber(args[6])
  local ttl = tonumber(args[7])
  local nudge_at = tonumber(args[8])
  local limit = tonumber(args[9])
  if not (k and inst and seq and cum and expire_at and hard and want and ttl
          and nudge_at and limit) then
    return redis.error_reply('ERR pg1_sync: expected 1 key and 9 arguments')
  end
  local h = redis.call('HMGET', k, 't', 'L', 'n', 'c:' .. inst, 's:' .. inst,
                       'r:' .. inst)
  local t = tonumber(h[1]) or 0
  local L = tonumber(h[2]) or 0
  local n = tonumber(h[3]) or 0
  local c = tonumber(h[4])
  local s = tonumber(h[5]) or -1
  local r = tonumber(h[6]) or 0
  if seq <= s then
    return {t, r, n, 0, L, 1}
  end
  if c == nil then
    c = 0
    n = n + 1
  end
  local now = now_ms()
  local flags = 0
  local delta = cum - c
  if delta ~= 0 then
    local before = t
    t = t + delta
    if delta > 0 then
      if nudge_at > 0 and before < nudge_at and t >= nudge_at and
          redis.call('HSETNX', k, 'xn', now) == 1 then
        flags = flags + 1
      end
      if limit > 0 and before < limit and t >= limit and
          redis.call('HSETNX', k, 'xl', now) == 1 then
        flags = flags + 2
      end
      local used = math.min(r, delta)
      r = r - used
      L = L - used
    end
  end
  if L > r then
    L = L - reclaim_expired(k, now, inst)
  end
  if want < 0 then
    L = L - r
    r = 0
  elseif want > 0 and hard > 0 then
    local avail = hard - t - L
    if avail > 0 then
      local share = math.floor(avail / (2 * math.max(n, 1)))
      if share < 1 then share = 1 end
      local grant = math.min(want, share)
      r = r + grant
      L = L + grant
    end
  end
  if L < 0 then L = 0 end
  redis.call('HSET', k, 't', t, 'L', L, 'n', n, 'c:' .. inst, cum,
             's:' .. inst, seq, 'r:' .. inst, r, 'e:' .. inst, now + ttl)
  redis.call('PEXPIREAT', k, expire_at)
  return {t, r, n, flags, L, 0}
end

local function read(keys, args)
  local out = {}
  for i = 1, #keys do
    local h = redis.call('HMGET', keys[i], 't', 'L', 'n')
    out[i] = {tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0}
  end
  return out
end

redis.register_function('pg1_sync', sync)
redis.register_function{function_name = 'pg1_read', callback = read,
                        flags = {'no-writes'}}
)lua";

}  // namespace plangate::internal

#endif  // PLANGATE_SYNC_REDIS_FUNCTIONS_H_
