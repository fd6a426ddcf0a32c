-- POST /api/v1/items/ on the FastAPI template: a JSON body whose title changes with every request.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.auth_headers()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0

request = function()
  counter = counter + 1
  local body = string.format(
    '{"title":"wrk item %d","description":"created by make bench, request %d"}', counter, counter)
  return wrk.format(nil, nil, nil, body)
end

done = common.done
