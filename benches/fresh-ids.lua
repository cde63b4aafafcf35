-- wrk script: sends pre-signed click links (the file LINKS names, one path per line), each once.
-- A run starts where the previous one stopped (kept in LINKS .. ".next"), so every run of a
-- bench sees fresh click ids, as a network's real traffic would.
local path = os.getenv("LINKS")
local links, next_at = {}, 0

local function read_next()
  local f = io.open(path .. ".next")
  if not f then return 0 end
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
  local f = io.open(path .. ".next", "w")
  f:write(tostring(after))
  f:close()
end
