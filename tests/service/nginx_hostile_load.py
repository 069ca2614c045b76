#!/usr/bin/python3
"""Hostile load through nginx, for tests/service/nginx_replicas_test.sh (loopback only, bounded).

A crowd against nginx: IDLE connections that send nothing, TRICKLE clients sending a request header a byte a
second, and UPLOADS clients from a second loopback address (127.0.0.2) that send a whole POST /v1/frames header
and then trickle its body a byte a second (more of them than nginx's limit_conn allows one address). Meanwhile
a normal client checks GET /healthz through nginx (a new connection each time; every answer 200 and under
--max-healthz-ms) and scores frames on POST /v1/frames through nginx (every answer 200), and the replicas' own
/metrics are read directly. Passes when
  - every /healthz answered 200 within the bound and every frame 200,
  - the replicas' open connections (deepscan_http_connections_open) stayed small the whole time and they
    answered exactly the normal client's requests: no 408, no refused connection, nothing else (the crowd never
    reached them: nginx absorbed it),
  - nginx answered the uploads beyond limit_conn with 429 and closed the idle and trickling connections after
    its client_header_timeout.
Prints one line of figures (JSON) on stdout; failures on stderr, exit 1.
"""
import argparse
import http.client
import json
import resource
import selectors
import socket
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--front", type=int, required=True)
ap.add_argument("--replicas", required=True, help="comma-separated ports of the replicas")
ap.add_argument("--image", required=True)
ap.add_argument("--idle", type=int, default=1000)
ap.add_argument("--trickle", type=int, default=100)
ap.add_argument("--uploads", type=int, default=70)
ap.add_argument("--limit-conn", type=int, required=True, help="nginx's limit_conn per address")
ap.add_argument("--header-timeout", type=float, required=True, help="nginx's client_header_timeout, s")
ap.add_argument("--seconds", type=float, default=8, help="how long the normal client runs under the crowd")
ap.add_argument("--max-healthz-ms", type=float, default=100)
ap.add_argument("--max-replica-connections", type=int, default=40)
args = ap.parse_args()
replicas = [int(p) for p in args.replicas.split(",")]
image = open(args.image, "rb").read()
HOST = "127.0.0.1"
errors = []

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = args.idle + args.trickle + args.uploads + 256
if hard != resource.RLIM_INFINITY and hard < want:
    sys.exit(f"open files limited to {hard} (ulimit -Hn), {want} needed")
if soft != resource.RLIM_INFINITY and soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def scrape(port):
    """(connections_open, connections_rejected, {(route, status): count}) of one replica."""
    c = http.client.HTTPConnection(HOST, port, timeout=5)
    c.request("GET", "/metrics", headers={"Connection": "close"})
    text = c.getresponse().read().decode()
    c.close()
    open_, rejected, requests = 0.0, 0.0, {}
    for line in text.splitlines():
        if line.startswith("deepscan_http_connections_open "):
            open_ = float(line.split()[1])
        elif line.startswith("deepscan_http_connections_rejected_total "):
            rejected = float(line.split()[1])
        elif line.startswith("deepscan_http_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            fields = dict(kv.split("=", 1) for kv in labels[labels.index("{") + 1:-1].split(","))
            key = (fields["route"].strip('"'), fields["status"].strip('"'))
            requests[key] = requests.get(key, 0) + float(value)
    return open_, rejected, requests


def totals():
    out = {"open": 0, "rejected": 0, "requests": {}}
    for p in replicas:
        o, r, req = scrape(p)
        out["open"] += o
        out["rejected"] += r
        for k, v in req.items():
            out["requests"][k] = out["requests"].get(k, 0) + v
    return out


before = totals()

# --- the crowd (one thread, non-blocking sockets) ---
sel = selectors.DefaultSelector()
crowd = {}  # socket -> {"kind", "opened", "closed", "first"}


def connect(kind, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.connect((HOST, args.front))
    s.setblocking(False)
    crowd[s] = {"kind": kind, "opened": time.monotonic(), "closed": None, "first": b""}
    sel.register(s, selectors.EVENT_READ)
    return s


def closed(s, info):
    info["closed"] = time.monotonic()
    sel.unregister(s)
    s.close()


t0 = time.monotonic()
for _ in range(args.idle):
    connect("idle")
trickle = [connect("trickle") for _ in range(args.trickle)]
upload_header = (f"POST /v1/frames HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: image/png\r\n"
                 f"Content-Length: 100000\r\n\r\n").encode()
uploads = []
try:
    for _ in range(args.uploads):
        s = connect("upload", source="127.0.0.2")
        s.send(upload_header)
        uploads.append(s)
except OSError as e:  # no second loopback address here: the limit_conn check is left out
    print(f"note: no uploads from 127.0.0.2 ({e})", file=sys.stderr)
opened_s = time.monotonic() - t0
header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000
stop_crowd = threading.Event()


def crowd_loop():
    sent = 0
    next_byte = time.monotonic()
    while not stop_crowd.is_set():
        for key, _ in sel.select(timeout=0.1):
            s, info = key.fileobj, crowd[key.fileobj]
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data:
                info["first"] = info["first"] or data[:40]
            else:
                closed(s, info)
        if time.monotonic() >= next_byte:  # a byte a second to every trickling client still open
            next_byte += 1
            for s in trickle + uploads:
                info = crowd[s]
                if info["closed"] is None:
                    try:
                        s.send(header[sent:sent + 1] if info["kind"] == "trickle" else b"\x89")
                    except OSError:
                        closed(s, info)
            sent += 1


crowd_thread = threading.Thread(target=crowd_loop)
crowd_thread.start()

# --- the normal client and the replicas' gauges, while the crowd is open ---
stop = threading.Event()
healthz_ms, healthz_bad, frame_codes, peak = [], [], [], {"open": 0}


def healthz_loop():
    while not stop.is_set():
        start = time.perf_counter()
        try:
            s = socket.create_connection((HOST, args.front), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
            s.close()
            status = answer.split(b" ", 2)[1].decode() if answer else "none"
        except OSError as e:
            status = f"error {e}"
        healthz_ms.append((time.perf_counter() - start) * 1000)
        if status != "200":
            healthz_bad.append(status)
        time.sleep(0.05)


def frames_loop():
    c = http.client.HTTPConnection(HOST, args.front, timeout=30)
    while not stop.is_set():
        try:
            c.request("POST", "/v1/frames", body=image, headers={"Content-Type": "image/png"})
            r = c.getresponse()
            r.read()
            frame_codes.append(r.status)
        except (OSError, http.client.HTTPException) as e:
            frame_codes.append(f"error {e}")
            c.close()
            c = http.client.HTTPConnection(HOST, args.front, timeout=30)


def gauge_loop():
    while not stop.is_set():
        try:
            now = sum(scrape(p)[0] for p in replicas)
            peak["open"] = max(peak["open"], now)
        except OSError as e:
            errors.append(f"replica /metrics: {e}")
        time.sleep(0.25)


threads = [threading.Thread(target=f) for f in (healthz_loop, frames_loop, gauge_loop)]
for t in threads:
    t.start()
time.sleep(args.seconds)
stop.set()
for t in threads:
    t.join()

# nginx closes the idle and trickling connections after client_header_timeout (counted from each one's accept).
deadline = t0 + args.header_timeout + 4
while time.monotonic() < deadline and any(i["closed"] is None for i in crowd.values() if i["kind"] != "upload"):
    time.sleep(0.2)
stop_crowd.set()
crowd_thread.join()
now = time.monotonic()


def kind_stats(kind):
    infos = [i for i in crowd.values() if i["kind"] == kind]
    gone = [i["closed"] - i["opened"] for i in infos if i["closed"] is not None]
    return infos, gone


idle_infos, idle_gone = kind_stats("idle")
trickle_infos, trickle_gone = kind_stats("trickle")
upload_infos, upload_gone = kind_stats("upload")
refused_429 = sum(1 for i in upload_infos if i["first"].startswith(b"HTTP/1.1 429"))
held = sum(1 for i in upload_infos if i["closed"] is None and not i["first"])
for s, info in list(crowd.items()):  # the uploads nginx is still reading: give up on them
    if info["closed"] is None:
        sel.unregister(s)
        s.close()
time.sleep(0.5)  # nginx sees the uploads go (it never passed them on)
after = totals()

delta = {k: after["requests"].get(k, 0) - before["requests"].get(k, 0) for k in after["requests"]}
answered = {k: v for k, v in delta.items() if v and k[0] != "/metrics"}
expected = {}
if healthz_ms:
    expected[("/healthz", "200")] = len(healthz_ms) - len(healthz_bad)
if frame_codes:
    expected[("/v1/frames", "200")] = sum(1 for c in frame_codes if c == 200)
figures = {
    "crowd_opened_s": round(opened_s, 2),
    "idle": args.idle, "trickle": args.trickle, "uploads": len(upload_infos),
    "healthz": len(healthz_ms), "healthz_max_ms": round(max(healthz_ms), 1) if healthz_ms else None,
    "healthz_median_ms": round(sorted(healthz_ms)[len(healthz_ms) // 2], 1) if healthz_ms else None,
    "frames": len(frame_codes), "frames_200": sum(1 for c in frame_codes if c == 200),
    "replica_connections_before": before["open"], "replica_connections_peak": peak["open"],
    "replica_requests_during": {f"{r} {s}": int(v) for (r, s), v in sorted(answered.items())},
    "replica_408": int(sum(v for (r, s), v in delta.items() if s == "408")),
    "replica_refused": after["rejected"] - before["rejected"],
    "idle_closed_by_nginx": len(idle_gone), "idle_closed_after_s": round(max(idle_gone), 1) if idle_gone else None,
    "trickle_closed_by_nginx": len(trickle_gone),
    "trickle_closed_after_s": round(max(trickle_gone), 1) if trickle_gone else None,
    "uploads_429": refused_429, "uploads_held_by_nginx": held,
}
print(json.dumps(figures))

if not healthz_ms or not frame_codes:
    errors.append("the normal client sent nothing")
if healthz_bad:
    errors.append(f"/healthz through nginx answered {sorted(set(healthz_bad))}")
if healthz_ms and max(healthz_ms) >= args.max_healthz_ms:
    errors.append(f"/healthz through nginx took {max(healthz_ms):.1f} ms (bound {args.max_healthz_ms} ms)")
bad_frames = [c for c in frame_codes if c != 200]
if bad_frames:
    errors.append(f"{len(bad_frames)} of {len(frame_codes)} frames not 200: {sorted(set(map(str, bad_frames)))}")
if peak["open"] > args.max_replica_connections:
    errors.append(f"the replicas had {peak['open']:.0f} connections open under the crowd: it reached them")
if answered != expected:
    errors.append(f"the replicas answered {answered}, not just the normal client's {expected}")
if figures["replica_refused"]:
    errors.append(f"the replicas refused {figures['replica_refused']:.0f} connections")
if len(idle_gone) != args.idle or len(trickle_gone) != args.trickle:
    errors.append(f"nginx closed {len(idle_gone)} of {args.idle} idle and {len(trickle_gone)} of {args.trickle} "
                  f"trickling connections within {args.header_timeout + 4:.0f} s")
elif min(idle_gone + trickle_gone) < args.header_timeout - 1:
    errors.append(f"nginx closed crowd connections after {min(idle_gone + trickle_gone):.1f} s, before "
                  f"client_header_timeout {args.header_timeout} s: closed by something else?")
if upload_infos:
    over = len(upload_infos) - args.limit_conn
    if refused_429 != over or held != args.limit_conn:
        errors.append(f"{len(upload_infos)} uploads from one address: nginx answered {refused_429} with 429 and "
                      f"held {held}; limit_conn {args.limit_conn} means {over} and {args.limit_conn}")
for e in errors:
    print("FAIL: " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
