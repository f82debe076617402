-- Shared part of the wrk scripts in this folder. setup() numbers the threads, and done()
-- prints one "result:" line with the throughput, the error counts and the latency
-- percentiles of wrk's histogram. wrk measures latency in microseconds from each request's
-- send over a closed loop of connections, so the latency at a fixed rate comes from
-- bench_rate_load instead.
--
--   result: name=LABEL rps=R requests=N duration_s=S errors_connect=N errors_read=N
--           errors_write=N errors_status=N errors_timeout=N p50_us=X p90_us=X p99_us=X
--           p999_us=X max_us=X mean_us=X
--
-- errors_status counts responses with a status of 400 or above. LABEL is the thread
-- global `name`, which the including script sets in init().

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local name = "wrk"
   if #threads > 0 then
      name = threads[1]:get("name") or name
   end
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "result: name=%s rps=%.0f requests=%d duration_s=%.2f errors_connect=%d errors_read=%d"
         .. " errors_write=%d errors_status=%d errors_timeout=%d p50_us=%.0f p90_us=%.0f"
         .. " p99_us=%.0f p999_us=%.0f max_us=%.0f mean_us=%.1f\n",
      name, summary.requests / seconds, summary.requests, seconds, e.connect, e.read,
      e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
