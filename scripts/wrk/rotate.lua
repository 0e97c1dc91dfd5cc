-- wrk script that sends the bearer tokens of the file WRK_TOKENS (one a line) in order, round
-- robin, and stops sending after WRK_REQUESTS responses (default: one per token, so each token
-- once); wrk itself then waits for its -d or a SIGINT (scripts/bench_envoy.py sends one). Run
-- it with one wrk thread. done() (report.lua) prints the run's figures as one JSON line.
local tokens = {}
for line in io.lines(os.getenv("WRK_TOKENS")) do
  tokens[#tokens + 1] = line
end
local limit = tonumber(os.getenv("WRK_REQUESTS") or "") or #tokens
local sent, received = 0, 0

request = function()
  sent = sent + 1
  local token = tokens[(sent - 1) % #tokens + 1]
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
end

response = function(status, headers, body)
  received = received + 1
  if received >= limit then
    wrk.thread:stop()
  end
end

-- done(): the JSON summary line (report.lua, next to this script).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
