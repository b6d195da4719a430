-- wrk script for POST /api/chat: wrk -t1 -c16 -d10s --latency -s bench/serve_load.lua http://127.0.0.1:PORT/
-- It names its fans, so it needs the daemon's web.api_key in BRANDBOT_WEB__API_KEY (both sides).
counter = 0
local auth = "Bearer " .. (os.getenv("BRANDBOT_WEB__API_KEY") or "")
request = function()
  counter = counter + 1
  local body = '{"text":"你们几点开门","fan":"wrk-' .. (counter % 800) .. '","msg_id":"' .. math.random(1, 1e12) .. '"}'
  return wrk.format("POST", "/api/chat", {["Content-Type"]="application/json", ["Authorization"]=auth}, body)
end
