#!/usr/bin/env python3
"""Slow clients against `fairsend serve` (issue 17): 2,000 connections that send their request
header one byte every few seconds (and reconnect when dropped), while other clients request the
unsubscribe page. Prints the page's p50/p99 latency and failures, and serve's RSS: before, at
its peak, and after the slow clients leave.

serve runs as shipped (default limits) under the usual open-files limit of 1,024. Run through
bench/run.sh (harness.py calls measure()), or alone after `cargo build --release`:

    python3 bench/slow_clients.py [--connections 2000] [--seconds 30]

Scenarios: the slow connections come from a few addresses (8 by default, 250 connections each:
one attacker with a few machines), or from as many addresses as connections (a botnet; every
address under the per-client cap, so only the global cap and the header timeout hold them).
Everything stays on loopback (127.0.0.0/8); every loop is bounded in time.
"""
import argparse
import asyncio
import multiprocessing
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "fairsend")
SECRET = "bench-secret-" + "0123456789abcdef" * 4
NOFILE = 1024


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def attacker_address(i, addresses):
    """The i-th slow connection's source address: 127.1.x.y, spread over `addresses`."""
    n = i % addresses
    return f"127.1.{n // 250}.{n % 250 + 1}"


async def slow_client(i, addresses, host, port, path, until, stats):
    """One slow connection, reopened whenever the server drops it, until `until`."""
    loop = asyncio.get_running_loop()
    source = attacker_address(i, addresses)
    # Spread the connects over the first two seconds, as a real attack ramps up.
    await asyncio.sleep((i % 200) / 100)
    while loop.time() < until:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(source, 0)), 5)
            stats["connects"] += 1
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode())
            await writer.drain()
            trickle = b"X-Slow-Header: " + b"a" * 4000
            for b in trickle:
                if loop.time() >= until:
                    break
                writer.write(bytes([b]))
                await writer.drain()
                # One byte every few seconds; a read that ends means the server closed.
                try:
                    await asyncio.wait_for(reader.read(1024), 3)
                    stats["dropped"] += 1
                    break
                except asyncio.TimeoutError:
                    pass
        except (OSError, asyncio.TimeoutError):
            stats["refused"] += 1
            await asyncio.sleep(0.5)
        finally:
            if writer is not None:
                writer.close()


def run_slow_clients(connections, addresses, host, port, path, seconds, ready):
    """In its own process (so the measuring client is not slowed by this one's event loop)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (connections * 2 + 1024,) * 2)

    async def main():
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        stats = {"connects": 0, "dropped": 0, "refused": 0}
        tasks = [asyncio.create_task(slow_client(i, addresses, host, port, path, until, stats))
                 for i in range(connections)]
        ready.set()
        await asyncio.gather(*tasks)
        log(f"   slow clients: {stats['connects']} connections opened, {stats['dropped']} closed "
            f"by the server while trickling, {stats['refused']} refused or reset at once")

    asyncio.run(main())


def rss_mib(pid, field="VmRSS"):
    try:
        text = open(f"/proc/{pid}/status").read()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def get(host, port, path, source, timeout=5.0):
    """One GET on a new connection from `source`: (status, seconds)."""
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout, source_address=(source, 0)) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, time.monotonic() - started


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def start_serve(config, db, extra=()):
    """serve with its default limits, under an open-files limit of 1,024."""
    env = dict(os.environ, FAIRSEND_SECRET=SECRET, FAIRSEND_LOG="warn")
    env.pop("FAIRSEND_ADMIN_PASSWORD", None)
    proc = subprocess.Popen(
        [BIN, "--config", config, "--db", db, "serve", "--listen", "127.0.0.1:0",
         "--metrics-listen", "none", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE)))
    line = proc.stdout.readline().decode().strip()
    base = line.removeprefix("listening on http://")
    host, port = base.rsplit(":", 1)
    return proc, host, int(port)


def measure(config, db, paths, connections=2000, addresses=8, seconds=30, rate=50):
    """One scenario; returns a dict of figures."""
    proc, host, port = start_serve(config, db)
    try:
        # Warm up: the pages, the database pool, the allocator.
        for i in range(50):
            get(host, port, paths[i % len(paths)], "127.0.0.1")
        time.sleep(1)
        before = rss_mib(proc.pid)
        ready = multiprocessing.Event()
        attack = multiprocessing.Process(
            target=run_slow_clients,
            args=(connections, addresses, host, port, paths[0], seconds, ready))
        attack.start()
        ready.wait(30)
        time.sleep(3)  # let the connections pile up before measuring
        latencies, failures, statuses = [], 0, {}
        peak = before or 0
        interval = 1.0 / rate
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < seconds - 5:
            # Real people: each request from another address (127.2.x.y), so the per-client
            # request rate is not what is measured.
            source = f"127.2.{(i // 250) % 250}.{i % 250 + 1}"
            try:
                status, secs = get(host, port, paths[i % len(paths)], source)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(secs)
                else:
                    failures += 1
            except OSError:
                failures += 1
                statuses["error"] = statuses.get("error", 0) + 1
            i += 1
            rss = rss_mib(proc.pid)
            if rss:
                peak = max(peak, rss)
            time.sleep(max(0.0, started + i * interval - time.monotonic()))
        attack.join(seconds + 30)
        hwm = rss_mib(proc.pid, "VmHWM")
        # After the slow clients leave: give the allocator a moment to return memory.
        time.sleep(5)
        after = rss_mib(proc.pid)
        return {
            "requests": i,
            "failures": failures,
            "statuses": statuses,
            "p50_ms": percentile(latencies, 50) * 1000 if latencies else None,
            "p99_ms": percentile(latencies, 99) * 1000 if latencies else None,
            "max_ms": max(latencies) * 1000 if latencies else None,
            "rss_before": before,
            "rss_peak": max(peak, hwm or 0),
            "rss_after": after,
        }
    finally:
        proc.terminate()
        proc.wait()


def prepare(work, n=100):
    """A config, a database with `n` sent messages (outbox transport) and their unsubscribe
    paths."""
    config = os.path.join(work, "config")
    shutil.copytree(os.path.join(ROOT, "bench", "config"), config)
    db = "sqlite://" + os.path.join(work, "fairsend.db")
    csv = os.path.join(work, "contacts.csv")
    with open(csv, "w", encoding="utf-8") as f:
        f.write("email,first_name,last_name,company,title,industry\n")
        for i in range(n):
            f.write(f"etu{i}.suku{i}@yritys{i}.example,Etunimi{i},Sukunimi{i},Yritys {i} Oy,"
                    f"Tietohallintojohtaja,kauppa\n")
    env = dict(os.environ, FAIRSEND_SECRET=SECRET, FAIRSEND_LOG="warn")
    fs = [BIN, "--config", config, "--db", db]
    subprocess.run([*fs, "import", csv, "--register", "prospects"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    outbox = os.path.join(work, "outbox")
    subprocess.run([*fs, "send", os.path.join(config, "campaigns", "bench.toml"), "--transport",
                    f"outbox:{outbox}"], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    paths = []
    for name in sorted(os.listdir(outbox)):
        raw = open(os.path.join(outbox, name), "rb").read()
        m = re.search(rb"https?://[^/>\s]+(/u/[A-Za-z0-9_\-]+)", raw)
        if m:
            paths.append(m.group(1).decode())
    if not paths:
        raise SystemExit("no unsubscribe link in the sent messages")
    return config, db, paths


def report(name, r):
    log(f"== {name}: {r['requests']} page requests, {r['failures']} failed {r['statuses']}; "
        f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms; RSS "
        f"{r['rss_before']:.0f} MiB before, {r['rss_peak']:.0f} MiB peak, "
        f"{r['rss_after']:.0f} MiB after")


def main():
    global BIN
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=BIN, help="the fairsend binary (default: the release build)")
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--rate", type=int, default=50, help="page requests per second (other clients)")
    p.add_argument("--addresses", default="8,2000",
                   help="comma-separated scenarios: how many addresses the slow clients come from")
    args = p.parse_args()
    BIN = args.bin
    work = tempfile.mkdtemp(prefix="fairsend-slow-")
    try:
        config, db, paths = prepare(work)
        print(f"{'scenario':<34} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} "
              f"{'RSS before':>11} {'RSS peak':>9} {'RSS after':>10}")
        for addresses in [int(a) for a in args.addresses.split(",")]:
            log(f"== {args.connections} slow connections from {addresses} address(es), "
                f"{args.seconds} s, page at {args.rate}/s")
            r = measure(config, db, paths, args.connections, addresses, args.seconds, args.rate)
            report(f"{addresses} addresses", r)
            print(f"{f'{args.connections} slow from {addresses} addr.':<34} {r['p50_ms']:>8.1f} "
                  f"{r['p99_ms']:>8.1f} {r['failures']:>7} {r['rss_before']:>10.0f}M "
                  f"{r['rss_peak']:>8.0f}M {r['rss_after']:>9.0f}M", flush=True)
        print("targets: p99 < 100 ms, no failure, peak RSS < 150 MB, after < 100 MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
