-- PATCH /api/v1/tasks/{id}, cycling through the task ids listed in BENCH_IDS_FILE
-- (one per line), so concurrent requests rarely wait on the same row lock.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.auth_headers()
wrk.method = "PATCH"
wrk.headers["Content-Type"] = "application/json"

local ids = {}
for line in io.lines(os.getenv("BENCH_IDS_FILE")) do
  if line ~= "" then
    ids[#ids + 1] = line
  end
end
local statuses = { "todo", "in_progress", "done" }
local counter = 0

request = function()
  counter = counter + 1
  local id = ids[counter % #ids + 1]
  local body = string.format(
    '{"title":"patched %d","status":"%s"}', counter, statuses[counter % 3 + 1])
  return wrk.format(nil, "/api/v1/tasks/" .. id, nil, body)
end

done = common.done
