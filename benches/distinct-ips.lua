-- wrk script: sends the URL's click, each time from a client IP of its own (CF-Connecting-IP, in
-- 10.0.0.0/8) with a phone browser's headers, as a network's clean traffic comes: a rule counting
-- duplicate IPs and sub IDs then counts every click and redirects it. From one IP, the clicks would
-- be duplicates: flagged, and once most of a network's clicks in an hour are flagged, blocked by
-- its flood threshold, so the bench would measure blocks, not redirects.
-- A run starts where the previous run against the same port stopped (kept in DISTINCT_IPS.PORT.next,
-- as benches/fresh-ids.lua keeps its place), so no IP repeats within a bench: there are 16.7 million.
-- (wrk sets wrk.port before it runs this file, in each thread's state and in the one done() runs in)
local state = (os.getenv("DISTINCT_IPS") or "/tmp/clickgate-distinct-ips") .. "." .. tostring(wrk.port) .. ".next"
local n = 0
local headers = {
  ["User-Agent"] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  ["Accept-Language"] = "de-DE,de;q=0.9",
}

local function read_next()
  local f = io.open(state)
  if not f then return 1 end
  local at = tonumber(f:read("*l")) or 1
  f:close()
  return at
end

function init()
  n = read_next()
end

function request()
  n = n + 1
  headers["CF-Connecting-IP"] = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format(nil, nil, headers)
end

function done(summary)
  -- Requests still out when the run stopped were sent too: skip past them as well.
  local f = io.open(state, "w")
  f:write(tostring(read_next() + summary.requests + 1024))
  f:close()
end
