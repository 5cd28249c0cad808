-- wrk script: POST one image file as the raw request body.
--
--   wrk -s bench/http/post_image.lua URL -- IMAGE [CONTENT_TYPE]
--
-- CONTENT_TYPE defaults to image/png. Every thread reads the file once at
-- start. Statuses other than 200 are counted per thread (the `response`
-- callback) and summed in `done`, which prints one machine-readable line
-- after wrk's own report, for bench/http/run.sh:
--   RESULT requests=N seconds=S rps=R p50_ms=A p99_ms=B non200=K socket_errors=E first_bad=STATUS
-- (latencies are wrk's, per request, from sending it to its full answer).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path, ctype = args[1], args[2] or "image/png"
   if not path then
      error("post_image.lua: pass the image after --: wrk ... URL -- IMAGE [CONTENT_TYPE]")
   end
   local f = assert(io.open(path, "rb"))
   local body = f:read("*a")
   f:close()
   non200 = 0
   first_bad = 0
   req = wrk.format("POST", nil, {["Content-Type"] = ctype}, body)
end

function request()
   return req
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
      if first_bad == 0 then
         first_bad = status
      end
   end
end

function done(summary, latency, requests)
   local bad, first = 0, 0
   for _, t in ipairs(threads) do
      bad = bad + t:get("non200")
      if first == 0 then
         first = t:get("first_bad")
      end
   end
   local e = summary.errors
   local seconds = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d seconds=%.3f rps=%.2f p50_ms=%.2f p99_ms=%.2f non200=%d "
         .. "socket_errors=%d first_bad=%d\n",
      summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, bad,
      e.connect + e.read + e.write + e.timeout, first))
end
