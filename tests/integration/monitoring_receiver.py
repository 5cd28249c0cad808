#!/usr/bin/python3
"""A stand-in for the monitoring service the monitoring example plugin talks
to (tests/integration/test_events.sh). Listens on a free loopback port and
writes that port to --port-file; appends every request it gets, as one JSON
line {"method", "path", "query", "body"}, to --log.

  POST /1/buckets?bucket=B       201 the first time, 409 after (like the seed's
                                 service); --bucket-status N answers N instead
  POST /1/buckets/B/objects      201 for a JSON body of an existing bucket
  anything else                  404

SIGUSR1 makes it hang: requests after it are read, then left unanswered for
60 s (a monitoring service that stopped answering)."""
import argparse
import os
import json
import signal
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port-file", required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--bucket-status", type=int, default=0)
args = parser.parse_args()

lock = threading.Lock()
buckets = set()
hang = threading.Event()
signal.signal(signal.SIGUSR1, lambda *_: hang.set())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = {"unparsed": raw.decode("utf-8", "replace")}
        with lock:
            with open(args.log, "a") as f:
                f.write(json.dumps({"method": "POST", "path": url.path, "query": query,
                                    "content_type": self.headers.get("Content-Type"),
                                    "body": body}) + "\n")
        if hang.is_set():
            time.sleep(60)
            return
        parts = url.path.strip("/").split("/")
        if url.path == "/1/buckets" and "bucket" in query:
            if args.bucket_status:
                return self.answer(args.bucket_status, {"error": "bucket service is broken"})
            with lock:
                exists = query["bucket"] in buckets
                buckets.add(query["bucket"])
            return self.answer(409 if exists else 201, {"bucket": query["bucket"]})
        if len(parts) == 4 and parts[:2] == ["1", "buckets"] and parts[3] == "objects":
            if parts[2] not in buckets or not isinstance(body, dict):
                return self.answer(400, {"error": "unknown bucket or not a JSON object"})
            return self.answer(201, {"stored": 1})
        return self.answer(404, {"error": "no such route"})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
server.serve_forever()
