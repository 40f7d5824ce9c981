-- Passpro's one atomic append (SPEC §4): one entry, written to every stream named, each conditioned on
-- its expected version, all or nothing.
-- KEYS[1] service stream (the chain), KEYS[2] the stream whose version the entry records (the student's;
-- the rectorat's for a campaign event, the slot's for a slot event; KEYS[1] itself is allowed),
-- KEYS[3] the campaign's event-id hash, KEYS[4..] more streams the entry goes to, each conditioned on its
-- version as KEYS[2] is (e.g. the slots a booking, a cancellation or a move takes or frees a place in).
-- ARGV[1] expected version of KEYS[2] (the stream's length the decision was taken on), ARGV[2] event_id,
-- ARGV[3] request fingerprint, ARGV[4..3+m] expected versions of KEYS[4..3+m] (m = #KEYS - 3, none before
-- there were more streams: the three-key call is unchanged), then the event's field/value pairs.
-- Returns {"ok", service_id, student_id, recorded_at, version, more_id...} (one id per KEYS[4..])
--      or {"duplicate", "<fingerprint>|<service_id>|<student_id>"}
--      or {"conflict", "<actual version>", "<key>"} (the first stream found away from its expected version).

local seen = redis.call('HGET', KEYS[3], ARGV[2])
if seen then
  return {'duplicate', seen}
end

local version = redis.call('XLEN', KEYS[2])
if version ~= tonumber(ARGV[1]) then
  return {'conflict', tostring(version), KEYS[2]}
end
local more = #KEYS - 3
for i = 1, more do
  local actual = redis.call('XLEN', KEYS[3 + i])
  if actual ~= tonumber(ARGV[3 + i]) then
    return {'conflict', tostring(actual), KEYS[3 + i]}
  end
end

-- recorded_at from the log's own clock, as RFC 3339 UTC (no os.date inside Redis).
local now = redis.call('TIME')
local seconds = tonumber(now[1])
local micros = tonumber(now[2])
local days = math.floor(seconds / 86400)
local rem = seconds - days * 86400
-- civil_from_days (H. Hinnant)
local z = days + 719468
local era = math.floor(z / 146097)
local doe = z - era * 146097
local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
local y = yoe + era * 400
local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
local mp = math.floor((5 * doy + 2) / 153)
local d = doy - math.floor((153 * mp + 2) / 5) + 1
local m = mp < 10 and mp + 3 or mp - 9
if m <= 2 then y = y + 1 end
local recorded_at = string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00',
  y, m, d, math.floor(rem / 3600), math.floor((rem % 3600) / 60), rem % 60, micros)

-- The chain: each entry of a service stream hashes the previous entry's hash and its own fields.
local prev = '0000000000000000000000000000000000000000'
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if last[1] then
  local f = last[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'hash' then prev = f[i + 1] end
  end
end

local fields = {}
for i = 4 + more, #ARGV do fields[#fields + 1] = ARGV[i] end
fields[#fields + 1] = 'recorded_at'
fields[#fields + 1] = recorded_at
fields[#fields + 1] = 'student_version'
fields[#fields + 1] = tostring(version + 1)
fields[#fields + 1] = 'prev_hash'
fields[#fields + 1] = prev

local material = {prev}
for i = 1, #fields, 2 do
  material[#material + 1] = fields[i] .. '=' .. string.len(fields[i + 1]) .. ':' .. fields[i + 1]
end
fields[#fields + 1] = 'hash'
fields[#fields + 1] = redis.sha1hex(table.concat(material, '\n'))

local service_id = redis.call('XADD', KEYS[1], '*', unpack(fields))
local student_id = service_id
if KEYS[2] ~= KEYS[1] then
  student_id = redis.call('XADD', KEYS[2], '*', unpack(fields))
end
local reply = {'ok', service_id, student_id, recorded_at, tostring(version + 1)}
local written = {[KEYS[1]] = service_id, [KEYS[2]] = student_id}
for i = 1, more do
  local key = KEYS[3 + i]
  if not written[key] then  -- a stream named twice gets the entry once
    written[key] = redis.call('XADD', key, '*', unpack(fields))
  end
  reply[#reply + 1] = written[key]
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3] .. '|' .. service_id .. '|' .. student_id)
return reply
