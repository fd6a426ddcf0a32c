-- POST /api/v1/tasks: a JSON body whose title changes with every request.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.auth_headers()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local priorities = { "low", "medium", "high" }
local counter = 0

request = function()
  counter = counter + 1
  local body = string.format(
    '{"title":"wrk task %d","description":"created by make bench, request %d",'
      .. '"priority":"%s","due_at":"2027-01-%02dT09:00:00Z"}',
    counter, counter, priorities[counter % 3 + 1], counter % 28 + 1)
  return wrk.format(nil, nil, nil, body)
end

done = common.done
