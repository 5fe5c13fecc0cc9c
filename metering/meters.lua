-- Check and count every meter of one call in one round trip, atomically.
--
-- KEYS[i]  the counter of meter i: a hash of buckets (sliding window) or a number (calendar period).
--          All keys share one hash tag (the tenant), so the script also runs on Redis Cluster.
-- ARGV[1]  now, in milliseconds since the epoch (the gateway's clock)
-- ARGV[2]  "check": refuse at the first meter without room (counting nothing), else count all;
--          "add":   add every amount (response values, after the response);
--          "peek":  read only.
-- then five arguments per meter:
--          needs_room ("1": used + amount <= limit; "0": used < limit), limit, amount,
--          bucket_ms (0 for a calendar period), period_end_ms (calendar) or 0 (sliding).
--
-- Returns {refused (1-based index, 0 when none), retry_ms, used_1, reset_ms_1, used_2, ...}; the
-- numbers travel as strings so fractions survive.

local BUCKETS = 60
local now = tonumber(ARGV[1])
local mode = ARGV[2]

local function fmt(x)
  return string.format('%.17g', x)
end

-- The buckets still in the window (sorted oldest first), their sum; older buckets are deleted.
local function sliding_read(key, bucket_ms)
  local oldest = math.floor(now / bucket_ms) - BUCKETS
  local raw = redis.call('HGETALL', key)
  local entries, stale, used = {}, {}, 0
  for i = 1, #raw, 2 do
    local index, amount = tonumber(raw[i]), tonumber(raw[i + 1])
    if index < oldest then
      stale[#stale + 1] = raw[i]
    else
      used = used + amount
      entries[#entries + 1] = {index, amount}
    end
  end
  if #stale > 0 then
    redis.call('HDEL', key, unpack(stale))
  end
  table.sort(entries, function(a, b) return a[1] < b[1] end)
  return used, entries
end

local function leaves_ms(index, bucket_ms)
  return (index + BUCKETS + 1) * bucket_ms
end

local function fits(needs_room, used, amount, limit)
  if needs_room then
    return used + amount <= limit
  end
  return used < limit
end

local meters = {}
for i = 1, #KEYS do
  local base = 2 + (i - 1) * 5
  local m = {
    key = KEYS[i],
    needs_room = ARGV[base + 1] == '1',
    limit = tonumber(ARGV[base + 2]),
    amount = tonumber(ARGV[base + 3]),
    bucket_ms = tonumber(ARGV[base + 4]),
    end_ms = tonumber(ARGV[base + 5]),
  }
  if m.bucket_ms > 0 then
    m.used, m.entries = sliding_read(m.key, m.bucket_ms)
  else
    m.used = tonumber(redis.call('GET', m.key) or '0')
  end
  meters[i] = m
end

local function reset_ms(m)
  if m.bucket_ms == 0 then
    return m.end_ms - now
  end
  for _, entry in ipairs(m.entries) do
    if entry[2] > 0 then
      return leaves_ms(entry[1], m.bucket_ms) - now
    end
  end
  return 0
end

-- Until enough old buckets leave for the call to fit (sliding), or the period's end (calendar).
local function retry_ms(m)
  if m.bucket_ms == 0 then
    return m.end_ms - now
  end
  local freed = 0
  for _, entry in ipairs(m.entries) do
    freed = freed + entry[2]
    if fits(m.needs_room, m.used - freed, m.amount, m.limit) then
      return leaves_ms(entry[1], m.bucket_ms) - now
    end
  end
  return (BUCKETS + 1) * m.bucket_ms
end

local function add(m)
  if m.amount == 0 then
    return
  end
  if m.bucket_ms > 0 then
    local index = math.floor(now / m.bucket_ms)
    redis.call('HINCRBYFLOAT', m.key, string.format('%d', index), fmt(m.amount))
    redis.call('PEXPIRE', m.key, (BUCKETS + 2) * m.bucket_ms)
    m.entries[#m.entries + 1] = {index, m.amount}
    table.sort(m.entries, function(a, b) return a[1] < b[1] end)
  else
    redis.call('INCRBYFLOAT', m.key, fmt(m.amount))
    -- relative to the gateway's clock, so a skew between it and Redis's clock does not matter
    redis.call('PEXPIRE', m.key, m.end_ms - now + 60000)
  end
  m.used = m.used + m.amount
end

local refused, retry = 0, 0
if mode == 'check' then
  for i, m in ipairs(meters) do
    if not fits(m.needs_room, m.used, m.amount, m.limit) then
      refused, retry = i, retry_ms(m)
      break
    end
  end
end
if (mode == 'check' and refused == 0) or mode == 'add' then
  for _, m in ipairs(meters) do
    add(m)
  end
end

local reply = {refused, fmt(retry)}
for _, m in ipairs(meters) do
  reply[#reply + 1] = fmt(m.used)
  reply[#reply + 1] = fmt(reset_ms(m))
end
return reply
