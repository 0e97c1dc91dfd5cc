-- wrk script for one fixed request: the Authorization header comes from WRK_AUTHORIZATION
-- (unset: no header). No request()/response() hooks, so wrk sends a prebuilt request and
-- the script costs nothing per request. done() (report.lua) prints the run's figures as one
-- JSON line.
local authorization = os.getenv("WRK_AUTHORIZATION")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

-- done(): the JSON summary line (report.lua, next to this script).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
