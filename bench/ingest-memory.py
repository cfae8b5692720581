#!/usr/bin/env python3
"""Peak memory (process RSS) of the ingest under hostile bodies (issue 9, item 5).

Starts the built app in local mode (Klaviyo dry-run, nothing leaves the machine) once per case and reads VmHWM
(peak resident set) and VmRSS from /proc/<pid>/status:

  idle         one valid request, nothing else: the floor
  amplify      one 4 MB body of [1,1,...]: answer size and peak
  slow-N       N connections declaring Content-Length 4 MB, each sends 10 bytes and stalls for 5 s
  slow1m-N     N connections declaring 4 MB, each sends 1 MB and stalls for 5 s

Usage: python3 bench/ingest-memory.py path/to/Klaviyo.Functions.dll [N] [case,case,...]
"""
import json
import os
import socket
import subprocess
import sys
import time

DLL = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 300
FOUR_MB = 4 * 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def start():
    port = free_port()
    env = dict(os.environ, Klaviyo__PrivateApiKey="pk_bench_memory", Klaviyo__DryRun="true",
               Local__DeadLetterPath=f"/tmp/ingest-memory-{port}.jsonl", Local__DatabasePath=f"/tmp/ingest-memory-{port}.db",
               Logging__LogLevel__Default="Warning")
    proc = subprocess.Popen(["dotnet", DLL, "--local", "--urls", f"http://127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            status, _ = request(port, b"GET /api/health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            if status == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    body = b'{"type":"track","userId":"u-1","event":"Warm up"}'
    status, _ = request(port, post_head(len(body)) + body)
    assert status == 202, status
    return proc, port


def post_head(length):
    return (f"POST /api/events HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def request(port, data, timeout=120):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def stop(proc):
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def case_idle():
    proc, port = start()
    time.sleep(1)
    peak = status_kb(proc.pid, "VmHWM")
    stop(proc)
    return {"case": "idle", "peak_rss_mb": round(peak / 1024, 1)}


def case_amplify():
    proc, port = start()
    body = bytearray(b"[" + b"1," * ((FOUR_MB - 2) // 2))
    body[-1:] = b"]"
    begin = time.time()
    status, answer = request(port, post_head(len(body)) + bytes(body))
    elapsed = time.time() - begin
    time.sleep(0.5)
    peak = status_kb(proc.pid, "VmHWM")
    stop(proc)
    return {"case": "amplify", "status": status, "answer_bytes": len(answer), "seconds": round(elapsed, 2),
            "peak_rss_mb": round(peak / 1024, 1)}


def case_slow(label, first_bytes):
    proc, port = start()
    sockets = []
    for _ in range(N):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        try:
            s.sendall(post_head(FOUR_MB))
            s.sendall(b"[" + b" " * (first_bytes - 1))
        except OSError:
            pass  # answered 503 and closed before taking the whole megabyte
        sockets.append(s)
    time.sleep(5)
    peak = status_kb(proc.pid, "VmHWM")
    rss = status_kb(proc.pid, "VmRSS")
    # An ordinary request while the slow ones hold their buffers.
    body = b'{"type":"track","userId":"u-2","event":"During"}'
    try:
        during, answer = request(port, post_head(len(body)) + body, timeout=30)
    except OSError as e:
        during = f"error {e}"
    early = 0
    for s in sockets:
        s.settimeout(0.2)
        try:
            if s.recv(16).startswith(b"HTTP/1.1 503"):
                early += 1
        except OSError:
            pass
        s.close()
    stop(proc)
    return {"case": f"{label}-{N}", "peak_rss_mb": round(peak / 1024, 1), "rss_while_held_mb": round(rss / 1024, 1),
            "ordinary_request_during": during, "slow_answered_503": early}


CASES = {"idle": case_idle, "amplify": case_amplify, "slow10b": lambda: case_slow("slow10b", 10),
         "slow1m": lambda: case_slow("slow1m", 1024 * 1024)}
results = [CASES[name]() for name in (sys.argv[3].split(",") if len(sys.argv) > 3 else CASES)]
for r in results:
    print(json.dumps(r))
