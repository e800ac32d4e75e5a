// Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
//
// redis_functions.h: the Redis 7 Function library plangate's sync loads on
// every connection (FUNCTION LOAD REPLACE; Functions are also persisted and
// replicated, unlike the script cache). docs/sync.md states the guarantees
// this protocol gives; this comment states the protocol.
//
// One hash per (subject, limit, window). Fields:
//   t          sum of every instance's cumulative usage (the cluster total)
//   L, D       sums of outstanding leases and down reserves
//   P          capacity held for usage that may be missing from t after a
//              data loss (see recovery)
//   n          instances active on the counter (z:<inst> == 1)
//   ep         the dataset epoch the hash was written under
//   rid, rd    the current recovery (its id) and its deadline (server ms)
//   ne, nv     instances a recovery waits for, and how many re-sent
//   F          the largest allocation (t + L + D + P) a re-sender last saw
//   xn, xl     set by the flush that first crossed the soft nudge / limit
//   ps         when the next scan for silent instances is due
//   c:<inst>   the instance's cumulative usage in the window
//   s:<inst>   the last sequence number applied for the instance
//   r:<inst>   its outstanding lease; d:<inst> its down reserve
//   e:<inst>   when it counts as silent (server ms); z:<inst> 1 if active
//   v:<inst>   the recovery id it last re-sent in
//
// The invariant: t + L + D + P <= hard after every call that grants, and
// every unit an instance may admit without asking Redis again is in its
// own lease or reserve (hot path ceilings, sync.h). Leases and reserves
// are never taken from a silent instance: it may still be admitting
// within them, cut off. They go back when it returns them or re-sends.
//
// pg2_sync KEYS[1]; ARGV:
//   1 inst  2 seq  3 cum  4 expire_at_ms  5 hard  6 want  7 ttl_ms
//   8 nudge_at  9 limit  10 epoch  11 seen  12 seen_n  13 acked_seq
//   14 rq (the down reserve wanted)  15 hold_r  16 hold_d  17 recovery_ms
// A sliding window's counter also names KEYS[2], the previous window's
// hash, and three more arguments: 18 left_ms (what of the window is still
// ahead), 19 len_ms, 20 prev_seen (the previous window's count as the
// caller's checks read it). The previous window's usage takes its
// weighted share of the cap from grants and reserves: hard becomes
// hard - ceil(p * left_ms / len_ms), p the larger of prev_seen and the
// previous hash's t + L + D + P (all it can have admitted, lost usage
// included). The share only shrinks as the window goes on, so what was
// granted against it stays within the cap.
// A call whose seq is not above s:<inst> changes nothing (a retry, or one
// overtaken by a later one); otherwise t moves by cum - c:<inst>, so the
// same cumulative applied twice counts once, and usage a lost write dropped
// comes back with the next call. Usage first eats into the lease.
// want > 0 asks for up to `want` lease units, granted from
// hard - t - L - D - P and at most a 1 / (2 n) share of that; want < 0
// returns the lease and the reserve. The reserve (what the instance may
// admit while Redis is down, local_share) shrinks only to what the caller
// asks (rq < d), so a caller whose reply is lost never believes it holds
// more than Redis set aside; it grows towards rq up to a 1 / (4 n) share
// of what nobody else holds.
//
// Recovery. A call starts one when the hash may have lost writes: its
// epoch is newer than ep (the dataset was flushed, restarted empty or
// failed over; see pg2_epoch), the hash is empty although the caller saw
// it before (seen > 0 or acked_seq > 0), or s:<inst> < acked_seq. Until
// every instance that was active (ne, the most any re-sender last saw) has
// re-sent once, or rd passes, nothing is granted. A re-send restores the
// caller's lease and reserve as it holds them (hold_r, hold_d: what it may
// still admit on them) and raises F to what it last saw. When the recovery
// ends, P takes F - (t + L + D + P) if positive: usage and rights of
// instances that never re-sent, held back for the rest of the window.
// A caller on an older epoch than ep gets flag 16 and nothing applied.
//
// Returns {t, r, d, n, flags, alloc} with alloc = t + L + D + P and flags
// 1 soft nudge crossed first, 2 limit crossed first, 4 stale (seq not
// new), 8 recovering (nothing granted), 16 epoch behind (call again with
// the current epoch).
//
// pg2_epoch KEYS[1] ARGV old loss: the dataset epoch, "<ms>-<rand>[-L]".
// Creates it when missing; replaces it when loss == 1 and it still equals
// `old` (the caller saw the server lose writes: a new replication id).
// "-L" marks an epoch born after a loss: keys empty in its first
// recovery_ms may have lost their data, so they recover too.
//
// pg2_read KEYS...: {t, L, n} per key (read only; quotactl usage).
//
// Wallets. One hash per account, <prefix>:{<account>}:wallet, fields:
//   k          credits applied to this hash (sum; corrections negative)
//   b          credits restored after a data loss (what the instance that
//              re-sent them knew); the credits are b + k
//   cn         the credit log's last seq (one per credit applied)
//   x:<seq>    the log, the newest WALLET_LOG (256): "total:amount:id",
//              total the credits after it
//   hid        the history the seqs number: a hash made again after a
//              loss gets another, a merge (below) takes the caller's
//   t          sum of every instance's cumulative spend
//   L          sum of the leases held
//   n          instances that called
//   ep         the dataset epoch the hash was written under
//   rd         while set (server ms), no lease is granted (recovery)
//   ps         when the next scan for silent instances is due
//   i:<id>     a credit applied (its amount): each id counts once
//   c:<inst>   the instance's cumulative spend; s:<inst> its last seq
//   r:<inst>   its lease; e:<inst> when it counts as silent
//   q:<inst>   1 when its lease was taken back while it was silent
// The invariant: t + L <= b + k. An instance spends only from its lease
// (what it reports holding is its lease: c + r only moves by grants and
// returns); the balance is b + k - t.
//
// pg2_wallet KEYS[1]; ARGV 1 inst 2 seq 3 cum 4 held 5 want 6 ttl_ms
//   7 epoch 8 seen_cr 9 seen_epoch 10 recovery_ms 11 need 12 seen_cn
//   13 seen_hid 14 m 15 floor, then m credits "seq:total:amount:id"
//   (ascending)
// Applies cum and held as the caller's spend and lease (a seq not above
// s:<inst> changes nothing), then grants up to `want` from
// b + k - t - L - floor (callers ask for a share: wallet_sync.h; floor the
// plan's minimum balance), nothing when held + grant would stay below
// `need` (the request the caller is short for); when that leaves the
// caller short but b + k - t - L is at least floor and what it lacks, it
// gets what it lacks (one request may start at the minimum, as on one
// instance). An instance silent for two
// ttl_ms has its lease taken back as spent (c += r, r = 0, q = 1): it
// stopped spending after one ttl_ms without an answer, and its next call
// turns what it did not spend back into balance (flag 32: drop the lease
// you hold). After a data loss (ep older than epoch, or no c:<inst> in the
// hash while the caller saw credits, from an older epoch or from its own,
// as after a FLUSHALL it has not noticed yet) nothing is granted for
// recovery_ms while the instances re-send their spend and leases.
//
// Credits after a loss. seen_cn, seen_cr and seen_hid say how far the
// caller knows the log (the seq, the total there, the history), seen_epoch
// the epoch of the call it heard them from. When they may be gone (an
// older seen_epoch, no c:<inst>, another hid, cn below seen_cn) a caller
// that sent none (m = -1) gets flag 64 and sends the credits it knows
// (wallet_sync.h keeps the newest 256). With them (m >= 0) the hash checks
// each at its place: all there, it only marks i:<id> where missing.
// Otherwise it lost some, or is another history, and is merged: b takes
// seen_cr and k the hash's credits the caller does not include: none the
// caller names by id; of the same hid those after seen_cn and those whose
// seq holds another id in the caller's (where the caller has none, or
// before its oldest, they are the shared prefix); of another hid all the
// hash holds but what the caller names. The log becomes the caller's
// entries, then the kept ones (cn = seen_cn + kept), hid the caller's,
// and every id the caller named is marked applied. So the credits come
// back from the instance that knew the most of the log (its latest
// correction included), plus what was credited into the emptied hash, and
// an id any re-sender knew counts once. A merge by a late re-sender that
// knew a correction the others did not can leave the balance below zero
// by what was granted meanwhile.
// Returns {balance, r, grant, credits, n, flags, through, upto, hid, log}:
// log the entries after seen_cn ("seq:total:amount:id"; after 0 for a
// caller of another hid; WALLET_FETCH, 32, at most), through and upto the
// seq and total the caller then knows the log to; flags 4 stale, 8
// recovering, 16 epoch behind, 32 lease taken back, 64 send your credits
// (the credit fields are then not to be learnt).
//
// pg2_wallet_credit KEYS[1] ARGV id amount epoch: applies a credit once per
// id (epoch "" from a tool that does not know it: ep is left as it is) and
// appends it to the log. A negative one (a correction) must leave
// b + k >= t + L. Returns {applied, balance, credits}, applied 0 for an id
// seen before; an error for a correction that does not fit.
//
// pg2_acct_put KEYS[1] ARGV doc mode version: an account's state (a hash
// of v, its version, and doc, account_doc.h). mode "set" stores doc as
// version v + 1; "seed" stores it as version 1 only when there is none;
// "restore" (after a data loss) stores it as `version` only when the hash
// has none or an older one. Returns {v, doc, changed} as stored after the
// call; changed is 1 when this call stored it (the caller then announces
// it on the feed, sync_keys.h).

#ifndef PLANGATE_SYNC_REDIS_FUNCTIONS_H_
#define PLANGATE_SYNC_REDIS_FUNCTIONS_H_

namespace plangate::internal {

inline constexpr char kRedisFunctionLibrary[] = R"lua(#!lua name=plangate2

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- "<ms>-<rand>[-L]" -> ms, born after a loss
local function epoch_parts(e)
  if not e then return -1, false end
  local ms = tonumber(string.match(e, '^(%d+)-'))
  return ms or -1, string.sub(e, -2) == '-L'
end

-- -1, 0, 1 as a is older than, the same as, newer than b
local function epoch_cmp(a, b)
  if a == b then return 0 end
  local am = epoch_parts(a)
  local bm = epoch_parts(b)
  if am ~= bm then return am < bm and -1 or 1 end
  return a < b and -1 or 1
end

-- Instances silent past their e: stop counting in n (their rights stay).
local function scan_silent(k, now, self, n)
  local all = redis.call('HGETALL', k)
  local f = {}
  for i = 1, #all, 2 do f[all[i]] = all[i + 1] end
  for name, v in pairs(f) do
    if v == '1' and string.sub(name, 1, 2) == 'z:' then
      local inst = string.sub(name, 3)
      if inst ~= self and (tonumber(f['e:' .. inst]) or 0) < now then
        redis.call('HSET', k, name, 0)
        n = n - 1
      end
    end
  end
  return math.max(n, 0)
end

local function sync(keys, a)
  local k = keys[1]
  local inst = a[1]
  local seq, cum, expire_at = tonumber(a[2]), tonumber(a[3]), tonumber(a[4])
  local hard, want, ttl = tonumber(a[5]), tonumber(a[6]), tonumber(a[7])
  local nudge_at, limit = tonumber(a[8]), tonumber(a[9])
  local epoch = a[10]
  local seen, seen_n, acked = tonumber(a[11]), tonumber(a[12]), tonumber(a[13])
  local rq, hold_r, hold_d = tonumber(a[14]), tonumber(a[15]),
                             tonumber(a[16])
  local recovery_ms = tonumber(a[17])
  if not (k and inst and seq and cum and expire_at and hard and want and ttl
          and nudge_at and limit and epoch and seen and seen_n and acked
          and rq and hold_r and hold_d and recovery_ms) then
    return redis.error_reply('ERR pg2_sync: expected 1 key and 17 arguments')
  end
  local capped = hard > 0
  if keys[2] then
    local left, len, prev_seen = tonumber(a[18]), tonumber(a[19]),
                                 tonumber(a[20])
    if not (left and len and prev_seen and len > 0) then
      return redis.error_reply(
          'ERR pg2_sync: a sliding window expects 2 keys and 20 arguments')
    end
    if hard > 0 then
      local ph = redis.call('HMGET', keys[2], 't', 'L', 'D', 'P')
      local p = (tonumber(ph[1]) or 0) + (tonumber(ph[2]) or 0) +
                (tonumber(ph[3]) or 0) + (tonumber(ph[4]) or 0)
      if prev_seen > p then p = prev_seen end
      left = math.max(0, math.min(left, len))
      hard = hard - math.ceil(p * left / len)
    end
  end
  local h = redis.call('HMGET', k, 't', 'L', 'D', 'P', 'n', 'ep', 'rid', 'rd',
                       'ne', 'nv', 'F', 'ps', 'c:' .. inst, 's:' .. inst,
                       'r:' .. inst, 'd:' .. inst, 'z:' .. inst, 'v:' .. inst)
  local empty = h[1] == false
  local t = tonumber(h[1]) or 0
  local L = tonumber(h[2]) or 0
  local D = tonumber(h[3]) or 0
  local P = tonumber(h[4]) or 0
  local n = tonumber(h[5]) or 0
  local ep = h[6] or nil
  local rid = tonumber(h[7])
  local rd = tonumber(h[8])
  local ne = tonumber(h[9]) or 0
  local nv = tonumber(h[10]) or 0
  local F = tonumber(h[11]) or 0
  local ps = tonumber(h[12]) or 0
  local c = tonumber(h[13])
  local s = tonumber(h[14]) or -1
  local r = tonumber(h[15]) or 0
  local d = tonumber(h[16]) or 0
  local z = h[17]
  local v = tonumber(h[18])
  if seq <= s then
    return {t, r, d, n, 4, t + L + D + P}
  end
  local cmp = ep and epoch_cmp(epoch, ep) or 1
  if cmp < 0 then
    return {t, r, d, n, 16, t + L + D + P}
  end
  local now = now_ms()
  -- Lost writes: start (or restart) a recovery.
  -- A newer epoch than the hash's is a new loss: every active instance
  -- re-sends again. Otherwise a loss joins the recovery under way.
  local lost = (acked > 0 and s < acked) or (empty and seen > 0)
  local restart = cmp > 0 and ep ~= nil
  if cmp > 0 and empty and not lost then
    local born, after_loss = epoch_parts(epoch)
    if after_loss and now - born < recovery_ms then lost = true end
  end
  ep = epoch
  if restart or (lost and not rd) then
    if not (rd and now < rd) then rd = now + recovery_ms end
    rid = now
    nv = 0
  end
  if z ~= '1' then
    n = n + 1
    z = '1'
  end
  local flags = 0
  if c == nil then c = 0 end
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
      -- Usage comes out of the lease first, then the reserve.
      local used = math.min(r, delta)
      r = r - used
      L = L - used
      local rest = math.min(d, delta - used)
      d = d - rest
      D = D - rest
    end
  end
  local recovering = false
  if rd then
    if rid and v ~= rid then
      -- First call in this recovery: the caller's own rights as it holds
      -- them (net of the usage in cum), and what it last saw.
      L = L - r + hold_r
      r = hold_r
      D = D - d + hold_d
      d = hold_d
      if seen > F then F = seen end
      if seen_n > ne then ne = seen_n end
      nv = nv + 1
      v = rid
    end
    if now < rd and (ne == 0 or nv < ne) then
      recovering = true
    else
      local gap = F - (t + L + D + P)
      if gap > 0 then P = P + gap end
      rd = nil
      rid = nil
      redis.call('HDEL', k, 'rd', 'rid', 'ne', 'nv', 'F')
    end
  end
  if now >= ps then
    n = scan_silent(k, now, inst, n)
    ps = now + 1000
  end
  if want < 0 then
    L = L - r
    r = 0
    D = D - d
    d = 0
    if n > 0 then n = n - 1 end
    z = '0'
  elseif capped and not recovering then
    local m = math.max(n, 1)
    if want > 0 then
      local avail = hard - t - L - D - P
      if avail > 0 then
        local share = math.floor(avail / (2 * m))
        if share < 1 then share = 1 end
        local grant = math.min(want, share)
        r = r + grant
        L = L + grant
      end
    end
    -- The down reserve grows towards rq, up to a 1 / (4 n) share of what
    -- nobody else holds; it shrinks only when asked (below).
    if rq > d then
      local target = math.floor(math.max(0, hard - t - L - (D - d) - P) /
                                (4 * m))
      local nd = math.max(d, math.min(rq, target))
      D = D - d + nd
      d = nd
    end
  end
  if want >= 0 and rq < d then
    D = D - d + rq
    d = rq
  end
  if L < 0 then L = 0 end
  if D < 0 then D = 0 end
  local fields = {'t', t, 'L', L, 'D', D, 'P', P, 'n', n, 'ep', ep, 'ps', ps,
                  'c:' .. inst, cum, 's:' .. inst, seq, 'r:' .. inst, r,
                  'd:' .. inst, d, 'e:' .. inst, now + ttl, 'z:' .. inst, z}
  if rd then
    for _, x in ipairs({'rd', rd, 'rid', rid, 'ne', ne, 'nv', nv, 'F', F,
                        'v:' .. inst, v}) do
      fields[#fields + 1] = x
    end
  end
  redis.call('HSET', k, unpack(fields))
  redis.call('PEXPIREAT', k, expire_at)
  if recovering then flags = flags + 8 end
  return {t, r, d, n, flags, t + L + D + P}
end

local function epoch(keys, a)
  local k = keys[1]
  local old, loss = a[1], a[2]
  if not (k and old and loss) then
    return redis.error_reply('ERR pg2_epoch: expected 1 key and 2 arguments')
  end
  local cur = redis.call('GET', k)
  if cur and not (loss == '1' and cur == old) then return cur end
  local t = redis.call('TIME')
  local e = string.format('%d-%s%s', tonumber(t[1]) * 1000 +
                          math.floor(tonumber(t[2]) / 1000), t[2],
                          old ~= '' and '-L' or '')
  redis.call('SET', k, e)
  return e
end

local function read(keys, args)
  local out = {}
  for i = 1, #keys do
    local h = redis.call('HMGET', keys[i], 't', 'L', 'n')
    out[i] = {tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0}
  end
  return out
end

local function acct_put(keys, a)
  local k = keys[1]
  local doc, mode, version = a[1], a[2], tonumber(a[3])
  if not (k and doc and version and
          (mode == 'set' or mode == 'seed' or mode == 'restore')) then
    return redis.error_reply(
        'ERR pg2_acct_put: expected 1 key, a doc, set|seed|restore and a version')
  end
  local h = redis.call('HMGET', k, 'v', 'doc')
  local v = tonumber(h[1])
  if v and (mode == 'seed' or (mode == 'restore' and v >= version)) then
    return {v, h[2] or '', 0}
  end
  if mode == 'restore' then v = version else v = (v or 0) + 1 end
  redis.call('HSET', k, 'v', v, 'doc', doc)
  return {v, doc, 1}
end

local function wallet_scan(k, now, self, n)
  local all = redis.call('HGETALL', k)
  local f = {}
  for i = 1, #all, 2 do f[all[i]] = all[i + 1] end
  local L = tonumber(f['L']) or 0
  for name, v in pairs(f) do
    if string.sub(name, 1, 2) == 'r:' and tonumber(v) > 0 then
      local inst = string.sub(name, 3)
      if inst ~= self and (tonumber(f['e:' .. inst]) or 0) < now then
        -- Silent two ttl: its lease counts as spent until it calls.
        local c = tonumber(f['c:' .. inst]) or 0
        local r = tonumber(v)
        redis.call('HSET', k, 'c:' .. inst, c + r, 'r:' .. inst, 0,
                   'q:' .. inst, 1)
        redis.call('HINCRBY', k, 't', r)
        L = L - r
      end
    end
  end
  return L
end

-- The credit log: x:<seq> = "total:amount:id" for the newest WALLET_LOG
-- credits (total: the credits after it), and cn the last seq.
local WALLET_LOG = 256
local WALLET_FETCH = 32  -- log entries per pg2_wallet reply

local function wlog_parse(s)
  if type(s) ~= 'string' then return nil end
  local total, amount, id = string.match(s, '^(%-?%d+):(%-?%d+):(.+)$')
  if not id then return nil end
  return {total = tonumber(total), amount = tonumber(amount), id = id,
          raw = s}
end

local function wlog_text(total, amount, id)
  return string.format('%d:%d:%s', total, amount, id)
end

-- The entries of seq first..last that are present, ascending.
local function wlog_read(k, first, last)
  local out = {}
  if last < first then return out end
  local names = {}
  for s = first, last do names[#names + 1] = 'x:' .. s end
  local got = redis.call('HMGET', k, unpack(names))
  for j = 1, #got do
    local e = wlog_parse(got[j])
    if e then
      e.seq = first + j - 1
      out[#out + 1] = e
    end
  end
  return out
end

local function new_hid()
  local t = redis.call('TIME')
  return string.format('%d-%s', tonumber(t[1]) * 1000 +
                       math.floor(tonumber(t[2]) / 1000), t[2])
end

-- A caller that re-sends the credits it knows (ce: its log entries, its
-- history hid, seen_cn and seen_cr the seq and total it knows them to):
-- if the hash holds each at its place, only the i:<id> marks are checked;
-- otherwise the hash lost some (or is another history, after a loss) and
-- becomes the caller's credits plus the hash's credits the caller does
-- not include. Returns b, kk, cn, hid as they are after.
local function wallet_merge(k, b, kk, cn, hid, ce, chid, seen_cn, seen_cr)
  local first = math.max(1, cn - WALLET_LOG + 1)
  local he = wlog_read(k, first, cn)
  local at = {}
  for _, e in ipairs(he) do at[e.seq] = e end
  local same = hid == chid
  local included = same and cn >= seen_cn
  if included then
    for _, e in ipairs(ce) do
      local h = at[e.seq]
      if e.seq >= first and not (h and h.id == e.id) then
        included = false
        break
      end
    end
  end
  local marks = {}
  for _, e in ipairs(ce) do
    marks[#marks + 1] = 'i:' .. e.id
  end
  if included then
    if #marks > 0 then
      local got = redis.call('HMGET', k, unpack(marks))
      for j = 1, #got do
        if not got[j] then redis.call('HSET', k, marks[j], ce[j].amount) end
      end
    end
    return b, kk, cn, hid
  end
  local cid, cseq = {}, {}
  for _, e in ipairs(ce) do
    cid[e.id] = e
    cseq[e.seq] = e
  end
  -- The hash's credits the caller's total does not include: none it knows
  -- by id; of the same history those after seen_cn and those where the
  -- two differ (before the caller's oldest, or where it has none: the
  -- shared prefix); of another history every other one.
  local kept, dup = {}, 0
  for _, h in ipairs(he) do
    local keep
    if cid[h.id] then
      keep = false
      dup = dup + h.amount
    elseif not same or h.seq > seen_cn then
      keep = true
    else
      local c = cseq[h.seq]
      keep = c ~= nil and c.id ~= h.id
    end
    if keep then kept[#kept + 1] = h end
  end
  local nk = 0
  if same then
    for _, h in ipairs(kept) do nk = nk + h.amount end
  else
    -- Another history: all it holds (credits past its log included) but
    -- what the caller knows.
    nk = b + kk - dup
  end
  local ncn = seen_cn + #kept
  -- The log again: the caller's entries, then the kept ones after them.
  local del = {}
  for _, h in ipairs(he) do del[#del + 1] = 'x:' .. h.seq end
  if #del > 0 then redis.call('HDEL', k, unpack(del)) end
  local fields = {}
  local low = ncn - WALLET_LOG
  for _, e in ipairs(ce) do
    if e.seq > low and e.seq <= seen_cn then
      fields[#fields + 1] = 'x:' .. e.seq
      fields[#fields + 1] = wlog_text(e.total, e.amount, e.id)
    end
  end
  local total = seen_cr + nk
  for j = #kept, 1, -1 do
    local h = kept[j]
    local s = seen_cn + j
    if s > low then
      fields[#fields + 1] = 'x:' .. s
      fields[#fields + 1] = wlog_text(total, h.amount, h.id)
    end
    total = total - h.amount
  end
  if #fields > 0 then redis.call('HSET', k, unpack(fields)) end
  if #marks > 0 then
    local got = redis.call('HMGET', k, unpack(marks))
    for j = 1, #got do
      if not got[j] then redis.call('HSET', k, marks[j], ce[j].amount) end
    end
  end
  if chid == '' then chid = hid ~= '' and hid or new_hid() end
  return seen_cr, nk, ncn, chid
end

local function wallet(keys, a)
  local k = keys[1]
  local inst = a[1]
  local seq, cum, held, want = tonumber(a[2]), tonumber(a[3]),
                               tonumber(a[4]), tonumber(a[5])
  local ttl, epoch = tonumber(a[6]), a[7]
  local seen_cr, seen_ep, recovery_ms = tonumber(a[8]), a[9], tonumber(a[10])
  local need, seen_cn, chid = tonumber(a[11]), tonumber(a[12]), a[13]
  local m, floor = tonumber(a[14]), tonumber(a[15])
  if not (k and inst and seq and cum and held and want and ttl and epoch and
          seen_cr and seen_ep and recovery_ms and need and seen_cn and chid and
          m and m >= -1 and m <= 1024 and floor and floor >= 0 and
          #a == 15 + math.max(m, 0)) then
    return redis.error_reply(string.format(
        'ERR pg2_wallet: expected 1 key and 15 arguments, then as many ' ..
        'credits as argument 14 says (got %d arguments)', #a))
  end
  local ce = {}
  for j = 1, math.max(m, 0) do
    local s, rest = string.match(a[15 + j], '^(%d+):(.+)$')
    local e = wlog_parse(rest)
    if not (s and e) then
      return redis.error_reply(string.format(
          'ERR pg2_wallet: argument %d is not seq:total:amount:id', 15 + j))
    end
    e.seq = tonumber(s)
    if j > 1 and e.seq <= ce[j - 1].seq then
      return redis.error_reply(string.format(
          'ERR pg2_wallet: argument %d: credit seqs must ascend', 15 + j))
    end
    ce[j] = e
  end
  local now = now_ms()
  local h = redis.call('HMGET', k, 'ps', 's:' .. inst)
  local s = tonumber(h[2]) or -1
  if seq <= s then
    local v = redis.call('HMGET', k, 'k', 'b', 't', 'r:' .. inst, 'n')
    local cr = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
    return {cr - (tonumber(v[3]) or 0), tonumber(v[4]) or 0, 0, cr,
            tonumber(v[5]) or 0, 4, 0, 0, '', {}}
  end
  if now >= (tonumber(h[1]) or 0) then
    local L2 = wallet_scan(k, now - ttl, inst, 0)
    redis.call('HSET', k, 'L', math.max(L2, 0), 'ps', now + 1000)
  end
  local v = redis.call('HMGET', k, 'k', 'b', 't', 'L', 'n', 'ep', 'rd',
                       'c:' .. inst, 'r:' .. inst, 'q:' .. inst, 'cn', 'hid')
  local kk = tonumber(v[1]) or 0
  local b = tonumber(v[2]) or 0
  local t = tonumber(v[3]) or 0
  local L = tonumber(v[4]) or 0
  local n = tonumber(v[5]) or 0
  local ep = v[6] or nil
  local rd = tonumber(v[7])
  local c = tonumber(v[8])
  local r = tonumber(v[9]) or 0
  local q = v[10] == '1'
  local cn = tonumber(v[11]) or 0
  local hid = v[12] or ''
  local cmp = ep and epoch_cmp(epoch, ep) or 1
  if cmp < 0 then return {b + kk - t, r, 0, b + kk, n, 16, 0, 0, '', {}} end
  local flags = 0
  -- A loss: a newer epoch than the hash's, or a hash that has nothing of
  -- the caller's although it saw credits (c:<inst> is never deleted), in
  -- whichever epoch: a caller that meets a FLUSHALL mid-spend still sends
  -- the epoch it had.
  local knows = seen_cn > 0 or seen_cr ~= 0
  local gone = c == nil and knows
  if (cmp > 0 and ep ~= nil) or gone then
    if not (rd and now < rd) then rd = now + recovery_ms end
  end
  -- The credits may have lost writes: the caller's come from an older
  -- dataset or from the hash it lost, from another history (hid), or go
  -- further than the hash's. It re-sends what it knows of them (m >= 0),
  -- or is asked to (flag 64), and the hash takes what it lacks.
  local suspect = knows and (seen_ep ~= epoch or gone or chid ~= hid or
                             cn < seen_cn)
  if m >= 0 and knows then
    b, kk, cn, hid = wallet_merge(k, b, kk, cn, hid, ce, chid, seen_cn,
                                  seen_cr)
  elseif suspect then
    flags = flags + 64
  end
  if c == nil then
    c = 0
    n = n + 1
  end
  t = t + cum - c
  if q then
    -- Taken back while silent: what it holds is no longer a lease.
    r = 0
    flags = flags + 32
  else
    L = L - r + held
    r = held
  end
  local grant = 0
  if rd and now >= rd then rd = nil end
  if rd then
    flags = flags + 8
  elseif want > 0 and not q then
    -- Leases come from what is neither spent nor leased above the plan's
    -- minimum balance (floor), so that the leases together keep the
    -- balance at the minimum.
    local free = b + kk - t - L
    local avail = free - floor
    if avail > 0 then
      grant = math.min(want, avail)
      -- Less than the caller needs for one request is no use to it, and
      -- kept from the others it would split the balance's last units.
      if held + grant < need then grant = 0 end
    end
    -- At the minimum one request may still start (on one instance too a
    -- request needs the balance at the minimum only when it starts): the
    -- caller gets what it lacks for it, and the balance goes below the
    -- minimum by less than that request; below it nothing more.
    if grant == 0 and floor > 0 and need > held and free >= floor and
       free >= need - held then
      grant = need - held
    end
    r = r + grant
    L = L + grant
  end
  if L < 0 then L = 0 end
  redis.call('HSET', k, 'k', kk, 'b', b, 't', t, 'L', L, 'n', n, 'ep', epoch,
             'cn', cn, 'c:' .. inst, cum, 's:' .. inst, seq, 'r:' .. inst, r,
             'e:' .. inst, now + ttl, 'q:' .. inst, 0)
  -- Every hash has a history id before a caller can know credits of it.
  if hid == '' then hid = new_hid() end
  if hid ~= v[12] then redis.call('HSET', k, 'hid', hid) end
  if rd then redis.call('HSET', k, 'rd', rd) else redis.call('HDEL', k, 'rd') end
  -- The log entries after what the caller knows (from the start when it
  -- knows another history), WALLET_FETCH at most, and the seq and total
  -- it then knows the credits to.
  local from = (chid == hid) and seen_cn or 0
  local through, upto, list = cn, b + kk, {}
  if from < cn then
    local first = math.max(from, cn - WALLET_LOG) + 1
    local last = math.min(cn, first + WALLET_FETCH - 1)
    local es = wlog_read(k, first, last)
    for _, e in ipairs(es) do list[#list + 1] = e.seq .. ':' .. e.raw end
    if last < cn and #es > 0 then
      through = es[#es].seq
      upto = es[#es].total
    end
  end
  return {b + kk - t, r, grant, b + kk, n, flags, through, upto, hid, list}
end

local function wallet_credit(keys, a)
  local k = keys[1]
  local id, amount, epoch = a[1], tonumber(a[2]), a[3]
  if not (k and id and amount and epoch) or id == '' then
    return redis.error_reply(
        'ERR pg2_wallet_credit: expected 1 key, an id, an amount, an epoch')
  end
  local v = redis.call('HMGET', k, 'k', 'b', 't', 'L', 'i:' .. id, 'ep', 'cn',
                       'hid')
  local kk = tonumber(v[1]) or 0
  local b = tonumber(v[2]) or 0
  local t = tonumber(v[3]) or 0
  local L = tonumber(v[4]) or 0
  if v[5] then return {0, b + kk - t, b + kk} end
  if amount < 0 and b + kk + amount < t + L then
    return redis.error_reply(string.format(
        'ERR pg2_wallet_credit: a correction of %d would leave less than ' ..
        'is spent or leased (%d of %d)', amount, t + L, b + kk))
  end
  if epoch ~= '' and (not v[6] or epoch_cmp(epoch, v[6]) > 0) then
    redis.call('HSET', k, 'ep', epoch)
  end
  local cn = (tonumber(v[7]) or 0) + 1
  kk = kk + amount
  redis.call('HSET', k, 'k', kk, 'i:' .. id, amount, 'cn', cn,
             'x:' .. cn, wlog_text(b + kk, amount, id))
  if not v[8] then redis.call('HSET', k, 'hid', new_hid()) end
  if cn > WALLET_LOG then redis.call('HDEL', k, 'x:' .. (cn - WALLET_LOG)) end
  return {1, b + kk - t, b + kk}
end

redis.register_function('pg2_sync', sync)
redis.register_function('pg2_wallet', wallet)
redis.register_function('pg2_wallet_credit', wallet_credit)
redis.register_function('pg2_acct_put', acct_put)
redis.register_function('pg2_epoch', epoch)
redis.register_function{function_name = 'pg2_read', callback = read,
                        flags = {'no-writes'}}
)lua";

}  // namespace plangate::internal

#endif  // PLANGATE_SYNC_REDIS_FUNCTIONS_H_
