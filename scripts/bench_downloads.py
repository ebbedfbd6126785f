#!/usr/bin/env python3
"""The downloader measured against curl on loopback (scripts/bench-downloads.sh).

A file of random bytes (default 1 GiB) is served by a small HTTP server here
(Range and If-Range, sendfile) and fetched by:
  curl               curl -o FILE: the transfer alone, left in the page cache
  curl + sync        the same, then the file flushed to the device (`sync FILE`)
  curl + sha256sum   the transfer, then the hash an app needs to verify it
  pocketlm pull      transfer, SHA-256 while writing, flush (fsync before the
                     atomic rename), verify, install
each --runs times, in turn; wall time, throughput and the process's peak RSS
(GNU time) are reported. Then the resume: `pocketlm pull` killed (SIGKILL) at
half the file and started again, timed to the end, with the bytes the second
run asked the server for.

The downloads go to --dest (default WORK_DIR/dest): a disk, or a tmpfs such
as /dev/shm where a flush costs nothing.

Usage: bench_downloads.py POCKETLM WORK_DIR OUT_DIR [--dest DIR] [--size-mib N] [--runs N] [--machine TEXT]
It is a benchmark: exit 0 whatever the numbers.
"""
import argparse
import hashlib
import http.server
import json
import os
import re
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    path: Path
    ranges: list


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        path: Path = self.server.path
        size = path.stat().st_size
        etag = '"bench-v1"'
        start = 0
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and (if_range is None or if_range == etag):
            start = int(m.group(1))
        self.server.ranges.append(start)
        if start >= size and m:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Connection", "close")
        self.end_headers()
        with open(path, "rb") as f:
            offset = start
            try:
                while offset < size:
                    sent = os.sendfile(self.connection.fileno(), f.fileno(), offset, min(8 << 20, size - offset))
                    if sent == 0:
                        break
                    offset += sent
            except (BrokenPipeError, ConnectionResetError):
                pass
        self.close_connection = True


def timed(cmd):
    """Runs cmd under GNU time; returns (seconds, peak RSS in MiB, return code).

    GNU time, not os.wait4 here: a child forked from this Python process
    would report Python's own resident size as its peak."""
    with open(os.devnull, "w") as null:
        t0 = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", "--", *cmd], stdout=null, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - t0
    kib = int(done.stderr.strip().splitlines()[-1])
    return seconds, kib / 1024, done.returncode


def then(first, second):
    """Two timed runs as one: times added, the larger peak, the first failure."""
    return first[0] + second[0], max(first[1], second[1]), first[2] or second[2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pocketlm")
    parser.add_argument("work", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dest", type=Path)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--machine", default="")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)

    source = args.work / "source.bin"
    size = args.size_mib << 20
    if not source.exists() or source.stat().st_size != size:
        with open(source, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
    sha = hashlib.sha256()
    with open(source, "rb") as f:
        while chunk := f.read(8 << 20):
            sha.update(chunk)
    digest = sha.hexdigest()

    server = Server(("127.0.0.1", 0), Handler)
    server.path, server.ranges = source, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/model.gguf"
    dest = args.dest or args.work / "dest"
    dest.mkdir(parents=True, exist_ok=True)
    fs = subprocess.run(["df", "-T", str(dest)], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]

    def clean():
        subprocess.run(["rm", "-rf", str(dest)], check=True)
        dest.mkdir()

    curl = lambda: timed(["curl", "-sf", "-o", str(dest / "model.gguf"), url])
    tools = {
        "curl": curl,
        "curl + sync": lambda: then(curl(), timed(["sync", str(dest / "model.gguf")])),
        "curl + sha256sum": lambda: then(curl(), timed(["sha256sum", str(dest / "model.gguf")])),
        "pocketlm pull": lambda: timed([args.pocketlm, "pull", url, "--dir", str(dest), "--sha256", digest]),
    }
    runs = {name: [] for name in tools}
    for i in range(args.runs):
        for name, run in tools.items():  # interleaved, so drift hits every tool alike
            clean()
            seconds, rss, code = run()
            if code != 0:
                raise SystemExit(f"{name} failed with {code}")
            runs[name].append({"seconds": seconds, "peak_rss_mib": rss})
            print(f"run {i + 1} {name}: {seconds:.2f} s, {size / seconds / 1e6:.0f} MB/s, peak RSS {rss:.1f} MiB", flush=True)

    # Resume after the process is killed half-way.
    clean()
    part = dest / ".model.gguf.part"
    proc = subprocess.Popen([args.pocketlm, "pull", url, "--dir", str(dest), "--sha256", digest],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and (not part.exists() or part.stat().st_size < size // 2):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not part.exists():
        raise SystemExit("the first pull finished before it could be stopped half-way: use a larger --size-mib")
    kept = part.stat().st_size
    server.ranges.clear()
    seconds, rss, code = timed([args.pocketlm, "pull", url, "--dir", str(dest), "--sha256", digest])
    resume = {"kept_bytes": kept, "seconds": seconds, "peak_rss_mib": rss, "ok": code == 0,
              "asked_from": list(server.ranges), "fresh_seconds": statistics.median(r["seconds"] for r in runs["pocketlm pull"])}
    print(f"resume: {kept} bytes kept, second run {seconds:.2f} s, asked from {server.ranges}", flush=True)
    subprocess.run(["rm", "-rf", str(dest)], check=True)

    result = {"machine": args.machine, "size_bytes": size, "runs": runs, "resume": resume}
    stem = "downloads-" + fs
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    mb = lambda s: size / s / 1e6
    lines = [f"## Downloads on loopback ({args.size_mib} MiB, {args.runs} runs each, into {dest} ({fs}))", "", args.machine, "",
             "| tool | median s | median MB/s | peak RSS (MiB) |", "|---|---|---|---|"]
    for name, rs in runs.items():
        med = statistics.median(r["seconds"] for r in rs)
        lines.append(f"| {name} | {med:.2f} | {mb(med):.0f} | {max(r['peak_rss_mib'] for r in rs):.1f} |")
    lines += ["", f"Resume after SIGKILL at {kept / size:.0%}: the second run took {seconds:.2f} s "
                  f"(a fresh download {resume['fresh_seconds']:.2f} s), re-hashing the {kept >> 20} MiB part and asking for "
                  f"bytes from {server.ranges[0] if server.ranges else '?'}; peak RSS {rss:.1f} MiB; "
                  f"{'installed and verified' if code == 0 else 'FAILED'}."]
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
