-- wrk script: sends pre-signed click links (the file LINKS names, one path per line), each once.
-- A run starts where the previous run against the same port stopped (kept in LINKS.PORT.next), so
-- every run of a bench sees fresh click ids, as a network's real traffic would, and the bare Worker
-- can be sent the same links (the same script's cost to the client) without using up clickgate's.
-- With no record yet a run starts at the second link: the first is the warm-up's.
-- (wrk sets wrk.port before it runs this file, in each thread's state and in the one done() runs in)
local path = os.getenv("LINKS")
local offsets = path .. "." .. tostring(wrk.port) .. ".next"
local links, next_at = {}, 0

local function read_next()
  local f = io.open(offsets)
  if not f then return 1 end
  local n = tonumber(f:read("*l")) or 0
  f:close()
  return n
end

function init()
  for line in io.lines(path) do links[#links + 1] = line end
  next_at = read_next()
end

function request()
  next_at = next_at + 1
  return wrk.format("GET", links[(next_at - 1) % #links + 1])
end

function done(summary)
  -- Requests still out when the run stopped were sent too: skip past them as well (wrk does not
  -- tell the script its connections; no bench here opens 1,024).
  local after = read_next() + summary.requests + 1024
  local f = io.open(offsets, "w")
  f:write(tostring(after))
  f:close()
end
