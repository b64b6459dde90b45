-- wrk script (bench/load.ts): requests paced at an even rate over all of a thread's connections,
-- where hey fires one ticker per connection and its tickers fire together.
--
--   wrk -t1 -c16 -d10s -s bench/pace.lua URL -- RATE
--
-- Each wrk connection calls delay() before each request; here every call takes the next slot of
-- one schedule shared by the thread's connections, a slot every 1000/RATE ms. wrk's event loop
-- (ae) times events in whole milliseconds of gettimeofday(), so the slots are put on that same
-- grid: a request fires in the millisecond of its slot, not up to a millisecond off. A connection
-- whose response comes back after its next slot was due sends at once (the rate then falls short,
-- and the achieved rate says so). Latency is wrk's own: from the moment the request is written
-- (after the delay) to the end of the response, in microseconds.
--
-- done() prints one line, `WRK_RESULT {json}`: wrk's counts and latency percentiles, and how even
-- the stream of requests was as sent (the gaps between successive requests of a thread).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_usec; } weft_timeval;
int gettimeofday(weft_timeval *tv, void *tz);
]]
local tv = ffi.new("weft_timeval")
local function now_us()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

local interval_ms, next_slot
-- Gaps between successive requests sent by this thread, against the interval.
sent, bunched, even, late = 0, 0, 0, 0
local last_send, req

function init(args)
  interval_ms = 1000 / tonumber(args[1])
end

function delay()
  local now_ms = math.floor(now_us() / 1000)
  if next_slot == nil or next_slot < now_ms then next_slot = now_ms end
  local d = math.floor(next_slot) - now_ms
  next_slot = next_slot + interval_ms
  return d
end

function request()
  local t = now_us()
  if last_send then
    local gap = (t - last_send) / 1000 / interval_ms
    if gap < 0.5 then bunched = bunched + 1 elseif gap <= 1.5 then even = even + 1 else late = late + 1 end
  end
  last_send = t
  sent = sent + 1
  if not req then req = wrk.format() end
  return req
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local g = { sent = 0, bunched = 0, even = 0, late = 0 }
  for _, t in ipairs(threads) do
    for k in pairs(g) do g[k] = g[k] + t:get(k) end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"50":%d,"90":%d,"99":%d,"max":%d},"gaps":{"sent":%d,"bunched":%d,"even":%d,"late":%d}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    g.sent, g.bunched, g.even, g.late))
end
