-- wrk script: cycles through a file of request targets, one a line ("/v1/sessions/s1/segment"),
-- so that every request reads another session or product. With a body file, every request
-- is a POST of that body as application/json. Each thread starts at another point of the
-- list. Prints the "result:" line of report.lua.
--
--   wrk -t2 -c64 -d10s --latency -s tests/bench/wrk/targets.lua http://127.0.0.1:8080 \
--       -- LABEL TARGETS_FILE [BODY_FILE]
--
-- Without arguments after "--", every request goes to the URL's path.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local requests = {}
local next_request = 1

local function read_all(path)
   local f = assert(io.open(path, "rb"), "cannot open " .. path)
   local data = f:read("*a")
   f:close()
   return data
end

function init(args)
   name = args[1] or "wrk"
   if args[2] == nil then
      return
   end

   local method, body, headers = "GET", nil, nil
   if args[3] ~= nil then
      method = "POST"
      body = read_all(args[3])
      headers = { ["Content-Type"] = "application/json" }
   end

   for line in io.lines(args[2]) do
      if line ~= "" then
         requests[#requests + 1] = wrk.format(method, line, headers, body)
      end
   end
   assert(#requests > 0, args[2] .. " has no request targets")

   -- Threads start spread over the list, so they do not read the same keys in step.
   next_request = (id * 7919) % #requests + 1
end

function request()
   if #requests == 0 then
      return wrk.format()
   end
   local r = requests[next_request]
   next_request = next_request % #requests + 1
   return r
end
