#!/usr/bin/env python3
"""Slowloris: opens N connections from 127.0.0.1 that send a request's
headers one byte at a time (a byte every second), and while they hang on,
checks that another address (127.0.0.2) gets /health at once, and that the
daemon closed what passed http.max_connections_per_ip.

    slow_clients.py PORT N
"""
import socket
import sys
import time
import urllib.request

PORT, N = int(sys.argv[1]), int(sys.argv[2])
conns = []
for _ in range(N):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    conns.append(s)
time.sleep(0.5)
# The daemon closes what is beyond the per-address limit: reading those
# gives EOF (b"") or a reset.
closed = 0
for s in conns:
    s.settimeout(0.05)
    try:
        if s.recv(1) == b"":
            closed += 1
    except socket.timeout:
        pass
    except OSError:
        closed += 1
for s in conns:  # still trickling: keep the open ones busy
    try:
        s.sendall(b"X")
    except OSError:
        pass


class SourceHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(lambda host, **kw: __import__("http.client").client.HTTPConnection(
            host, source_address=("127.0.0.2", 0), **kw), req)


t0 = time.monotonic()
opener = urllib.request.build_opener(SourceHandler)
try:
    with opener.open("http://127.0.0.1:%d/health" % PORT, timeout=10) as r:
        status = r.status
except OSError as e:  # refused, reset, or no answer: locked out
    status = repr(e)
took = time.monotonic() - t0
for s in conns:
    s.close()
if status != 200 or took > 2:
    print("FAIL: /health from 127.0.0.2 answered %s after %.2f s while %d slow connections "
          "hung on" % (status, took, N), file=sys.stderr)
    sys.exit(1)
print("ok - %d slow connections from 127.0.0.1 (%d closed by the per-address limit); "
      "127.0.0.2 got /health in %.3f s" % (N, closed, took))
