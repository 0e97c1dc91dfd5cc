-- wrk script of `make soak` (scripts/soak.py): every wrk thread has ONE connection (run wrk
-- with -tN -cN), so each response answers the request that thread sent last, and the status
-- is checked against what that request had to get.
--
-- WRK_TOKENS: one line per token, "<token> <kind> <rank>": kind "phr" (phishing resistant)
-- or "push"; rank = the position of the token's subject in the revocation order, -1 if it is
-- never revoked. WRK_ACK: a file holding how many subjects (in rank order) the filter has
-- acknowledged as revoked (202 from its push endpoint); re-read every 256 requests. Before a
-- request is sent, the acknowledged count is noted: a revoked subject acknowledged then MUST
-- get 401; one not yet acknowledged may get its ordinary answer or 401.
-- WRK_REQUESTS: the run's total; thread t sends requests t, t+T, t+2T, ... (T threads),
-- request k carrying token k mod #tokens to route k mod 3.
local tokens, kinds, ranks = {}, {}, {}
for line in io.lines(os.getenv("WRK_TOKENS")) do
  local token, kind, rank = line:match("^(%S+) (%S+) (%S+)$")
  tokens[#tokens + 1] = token
  kinds[#kinds + 1] = kind
  ranks[#ranks + 1] = tonumber(rank)
end
local ack_path = os.getenv("WRK_ACK")
local total = tonumber(os.getenv("WRK_REQUESTS"))
local paths = { "/admin/users", "/api/profile", "/public/page" }
-- The ordinary answer per route: admin requires phishing resistant (push: 403, deny).
local ordinary = {
  ["/admin/users"] = { phr = 200, push = 403 },
  ["/api/profile"] = { phr = 200, push = 200 },
  ["/public/page"] = { phr = 200, push = 200 },
}
-- A revoked session's answer per route (the public route does not look at tokens).
local revoked_status = { ["/admin/users"] = 401, ["/api/profile"] = 401, ["/public/page"] = 200 }

local threads, next_id = {}, 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

local id, stride, k, limit
local acked, since_read = 0, 256
local pending -- {index, path, acked at send}
checked, mismatches, strict_revoked, loose_revoked, examples = 0, 0, 0, 0, ""

function init(args)
  id = wrk.thread:get("id")
  stride = tonumber(os.getenv("WRK_THREADS"))
  k = id
  limit = math.floor((total - id + stride - 1) / stride)
end

local function read_ack()
  local f = io.open(ack_path, "r")
  if f then
    local n = tonumber(f:read("*l") or "")
    f:close()
    if n and n > acked then acked = n end
  end
end

request = function()
  since_read = since_read + 1
  if since_read >= 256 then
    read_ack()
    since_read = 0
  end
  local index = k % #tokens + 1
  local path = paths[k % 3 + 1]
  pending = { index, path, acked }
  k = k + stride
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tokens[index] })
end

response = function(status, headers, body)
  local index, path, acked_at_send = pending[1], pending[2], pending[3]
  local kind, rank = kinds[index], ranks[index]
  local want = ordinary[path][kind]
  local ok
  if rank >= 0 and rank < acked_at_send then
    ok = status == revoked_status[path]
    strict_revoked = strict_revoked + 1
  elseif rank >= 0 then
    ok = status == want or status == revoked_status[path]
    loose_revoked = loose_revoked + 1
  else
    ok = status == want
  end
  checked = checked + 1
  if not ok then
    mismatches = mismatches + 1
    if mismatches <= 5 then
      examples = examples .. string.format("%s %s rank=%d acked=%d got %d; ", path, kind, rank,
        acked_at_send, status)
    end
  end
  if checked >= limit then
    wrk.thread:stop()
  end
end

done = function(summary, latency, requests)
  local c, m, s, l, ex = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("checked")
    m = m + t:get("mismatches")
    s = s + t:get("strict_revoked")
    l = l + t:get("loose_revoked")
    ex = ex .. t:get("examples")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"checked":%d,' ..
    '"mismatches":%d,"strict_revoked":%d,"loose_revoked":%d,"examples":"%s",' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    c, m, s, l, (ex:gsub('"', "'")), e.connect, e.read, e.write, e.timeout))
end
