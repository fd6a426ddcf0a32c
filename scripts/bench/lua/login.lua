-- POST /api/v1/auth/login as an OAuth2 password-grant form; BENCH_USERNAME / BENCH_PASSWORD.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=password&username=" .. os.getenv("BENCH_USERNAME")
  .. "&password=" .. os.getenv("BENCH_PASSWORD")
done = common.done
