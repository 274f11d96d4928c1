-- wrk script for the unsubscribe page: GET /u/{token} over real tokens of the benchmark's
-- outbox (one path per line in $BENCH_PATHS), optionally at a fixed rate ($BENCH_DELAY_MS
-- between the requests of each connection).
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do
  if #line > 0 then paths[#paths + 1] = line end
end
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local i = 0

request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end

if delay_ms > 0 then
  delay = function()
    return delay_ms
  end
end
