#!/usr/bin/env python3
"""A legitimate sender's latency while slow uploads attack the ingest's body budget (issue 18, item 4).

Starts the built app in local mode (Klaviyo dry-run, default Ingest settings: 4 MB requests, 128 MB in-flight budget)
and runs one legitimate sender: sequential POSTs of a 20-event batch (about 2 KB), each on a fresh connection.

  floor    the sender alone for D seconds
  attack   N connections each declare 4 MB, send 1 MB, then one byte a second (and never reconnect); once all have
           sent their megabyte the sender runs for D seconds

Prints per phase: requests, answers by status, p50 / p99 / max latency (ms), and how the attack connections were
answered (408 evicted, 503 refused, none).

Usage: python3 bench/slow-uploads.py path/to/Klaviyo.Functions.dll [N=300] [D=20]
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

DLL = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 300
D = float(sys.argv[3]) if len(sys.argv) > 3 else 20
FOUR_MB = 4 * 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def head(length):
    return (f"POST /api/events HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def request(port, data, timeout=60):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    status = int(raw.split(b" ", 2)[1])
    if status != 202 and b'"type":"' in raw:
        problem = raw.split(b"urn:klaviyo-relay:problem:", 1)[1].split(b'"', 1)[0].decode()
        return f"{status} {problem}"
    return status


def start():
    port = free_port()
    env = dict(os.environ, Klaviyo__PrivateApiKey="pk_bench_slow", Klaviyo__DryRun="true",
               Local__DeadLetterPath=f"/tmp/slow-uploads-{port}.jsonl", Local__DatabasePath=f"/tmp/slow-uploads-{port}.db",
               Logging__LogLevel__Default="Error")
    proc = subprocess.Popen(["dotnet", DLL, "--local", "--urls", f"http://127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if str(request(port, b"GET /api/health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")).startswith("200"):
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the app did not start")


def batch(seq):
    events = ",".join(json.dumps({"type": "track", "messageId": f"legit-{seq}-{i}", "userId": f"u-{i}",
                                  "event": "Order Completed", "properties": {"revenue": 42.5, "currency": "EUR"}})
                      for i in range(20))
    body = f"[{events}]".encode()
    return head(len(body)) + body


def sender(port, seconds, label):
    statuses, latencies = {}, []
    end = time.time() + seconds
    seq = 0
    while time.time() < end:
        seq += 1
        begin = time.perf_counter()
        try:
            status = request(port, batch(f"{label}-{seq}"))
        except OSError as e:
            status = type(e).__name__
        latencies.append((time.perf_counter() - begin) * 1000)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    latencies.sort()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)
    return {"phase": label, "requests": len(latencies), "statuses": statuses, "p50_ms": pick(0.5),
            "p99_ms": pick(0.99), "max_ms": round(latencies[-1], 1)}


def main():
    proc, port = start()
    try:
        sender(port, 2, "warm-up")
        results = [sender(port, D, "floor")]
        attackers, stop = [], threading.Event()
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            try:
                s.sendall(head(FOUR_MB))
                s.sendall(b"[" + b" " * (1024 * 1024 - 1))
            except OSError:
                pass  # answered (503) and closed before taking the whole megabyte
            attackers.append(s)

        def trickle():
            while not stop.wait(1):
                for s in attackers:
                    try:
                        s.send(b" ")
                    except OSError:
                        pass
        threading.Thread(target=trickle, daemon=True).start()
        results.append(sender(port, D, f"attack-{N}"))
        stop.set()
        answers = {}
        for s in attackers:
            s.settimeout(0.05)
            try:
                line = s.recv(64).split(b"\r\n")[0].decode() or "closed"
            except OSError as e:
                line = "none" if isinstance(e, socket.timeout) else type(e).__name__
            answers[line] = answers.get(line, 0) + 1
            s.close()
        results[-1]["attack_connections"] = answers
        for r in results:
            print(json.dumps(r))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


main()
