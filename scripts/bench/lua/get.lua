-- GET with the bench user's bearer token; the path is wrk's URL.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
common.auth_headers()
done = common.done
