-- wrk script (bench/load.ts): requests paced at an even rate over all connections, where hey
-- fires one ticker per connection and its tickers fire together.
--
--   wrk -t16 -c16 -d10s -s bench/pace.lua URL -- RATE 16
--
-- One connection per wrk thread (-t = -c). The connections take turns on one schedule: a request
-- every 1000/RATE ms in all, connection i sending at t0 + i x 1000/RATE ms + k x (its period,
-- connections x 1000/RATE ms). wrk's event loop (ae) only times events in whole milliseconds, and
-- its waits are counted from the last whole millisecond, so a timer fires up to a millisecond or
-- more off. So delay() wakes the connection about 2 ms early, and request(), called just before
-- the request is written, sleeps (clock_nanosleep, not a spin) until the slot itself: the only
-- connection of the thread is idle then, and wrk starts its clock for the request after
-- request() returns, so the sleep is in no measured latency. A connection whose slot passed
-- before it could send (its previous response came back late, or the CPUs were busy) sends at
-- once and then takes the next slot after now: no catching up in bursts; the achieved rate says
-- how many slots were missed.
--
-- done() prints one line, `WRK_RESULT {json}`: wrk's counts, latency percentiles (microseconds,
-- from the request being written to the end of its response), and how long after their slots the
-- requests were sent (percentiles, to 10 us; "2010" means 2 ms or more).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } weft_timespec;
int clock_gettime(int clk, weft_timespec *tp);
int clock_nanosleep(int clk, int flags, const weft_timespec *req, weft_timespec *rem);
]]
local CLOCK_MONOTONIC, TIMER_ABSTIME = 1, 1
local ts = ffi.new("weft_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end
local function sleep_until_us(t)
  ts.tv_sec = math.floor(t / 1000000)
  ts.tv_nsec = math.floor((t % 1000000) * 1000)
  ffi.C.clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ts, nil)
end

-- Set per thread by setup(): its index and the common start.
id, t0 = 0, 0
-- How long after its slot each request was sent: counts per 10 us (offsets[200]: 2 ms or more),
-- per thread, summed in done(); and the slots missed.
sent, skipped, offsets = 0, 0, {}
local interval_us, period_us, slot, req, reqs, paths

function init(args)
  interval_us = 1000000 / tonumber(args[1])
  period_us = interval_us * tonumber(args[2]) -- args[2]: the connections, one per thread
  -- args[3], optional: spread the requests over this many paths, /p0 ... /p(N-1), in turn (the
  -- telemetry phase's soak: series must not grow with paths).
  paths = tonumber(args[3] or "0")
  if paths > 0 then
    reqs = {}
    for i = 0, paths - 1 do reqs[i] = wrk.format(nil, "/p" .. i) end
  end
end

-- The first slot of this connection's schedule at or after t.
local function slot_after(t)
  local first = t0 + id * interval_us
  if t <= first then return first end
  return first + math.ceil((t - first) / period_us) * period_us
end

function delay()
  local now = now_us()
  slot = slot and slot + period_us or slot_after(now)
  if slot < now then
    -- Missed (the previous response came back late, or the CPUs were busy): send at once, as
    -- the latest slot passed; the schedule goes on from the next one, without catching up.
    local missed = math.floor((now - slot) / period_us)
    skipped = skipped + missed
    slot = slot + missed * period_us
    return 0
  end
  return math.max(0, math.floor((slot - now) / 1000) - 2)
end

function request()
  if not req then req = wrk.format() end
  if not slot then return req end -- wrk checks the request once before starting
  if now_us() < slot then sleep_until_us(slot) end
  local b = math.min(200, math.max(0, math.floor((now_us() - slot) / 10)))
  offsets[b] = (offsets[b] or 0) + 1
  sent = sent + 1
  if reqs then return reqs[(sent + id) % paths] end
  return req
end

local threads, start = {}, nil
function setup(thread)
  start = start or now_us() -- the common origin of every connection's schedule
  thread:set("id", #threads)
  thread:set("t0", start)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local sent_all, skipped_all, hist = 0, 0, {}
  for _, t in ipairs(threads) do
    sent_all = sent_all + t:get("sent")
    skipped_all = skipped_all + t:get("skipped")
    for b, n in pairs(t:get("offsets")) do hist[b] = (hist[b] or 0) + n end
  end
  -- Percentile of the offsets, in us (the upper edge of its 10 us step).
  local function offset(p)
    local want, seen = math.ceil(sent_all * p / 100), 0
    for b = 0, 200 do
      seen = seen + (hist[b] or 0)
      if seen >= want and want > 0 then return (b + 1) * 10 end
    end
    return 0
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"50":%d,"90":%d,"99":%d,"max":%d},"pacing":{"sent":%d,"skipped":%d,"offsetUs":{"50":%d,"90":%d,"99":%d}}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    sent_all, skipped_all, offset(50), offset(90), offset(99)))
end
