#!/usr/bin/env python3
"""fairsend benchmark harness: throughput and memory against the limits of the machine.

Run through bench/run.sh (which installs the tools and builds the release binaries). Prints one
table; every figure is measured in this run. See bench/README.md for what each row means.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "fairsend")
SECRET = "bench-secret-" + "0123456789abcdef" * 4
INDUSTRIES = ["rakennus", "logistiikka", "teollisuus", "kauppa"]
SENDER = "bench@example.com"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_measured(cmd, env=None, cwd=None):
    """Runs cmd to completion: (seconds, peak RSS in MiB, exit code, stdout)."""
    started = time.monotonic()
    code, rss, out = wait_measured(spawn_measured(cmd, env=env, cwd=cwd))
    return time.monotonic() - started, rss, code, out


def spawn_measured(cmd, env=None, cwd=None):
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_measured(proc):
    """Waits for a child started with spawn_measured: (exit code, peak RSS MiB, stdout).
    The pipes are drained on threads (a full pipe would block the child); the child is reaped
    with wait4, which gives its own peak RSS."""
    chunks = {}

    def drain(name, pipe):
        chunks[name] = pipe.read()

    threads = [threading.Thread(target=drain, args=(n, p)) for n, p in (("out", proc.stdout), ("err", proc.stderr))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        log(f"command failed ({proc.returncode}): {' '.join(proc.args)}\n"
            f"{chunks.get('err', b'').decode(errors='replace')[-3000:]}")
    return proc.returncode, usage.ru_maxrss / 1024, chunks.get("out", b"")


def fairsend(config, db, *args):
    return [BIN, "--config", config, "--db", db, *args]


def env():
    e = dict(os.environ)
    e["FAIRSEND_SECRET"] = SECRET
    e["FAIRSEND_LOG"] = "warn"
    return e


def write_contacts(path, n):
    with open(path, "w", encoding="utf-8") as f:
        f.write("email,first_name,last_name,company,title,industry\n")
        for i in range(n):
            c = i % 9973
            f.write(
                f"etu{i}.suku{i}@yritys{c}.example,Etunimi{i},Sukunimi{i},Yritys {c} Oy,"
                f"Tietohallintojohtaja,{INDUSTRIES[i % 4]}\n"
            )


def make_config(workdir, concurrency, campaign_names):
    """A copy of bench/config with the given concurrency and one campaign file per name."""
    config = os.path.join(workdir, "config")
    if os.path.exists(config):
        shutil.rmtree(config)
    shutil.copytree(os.path.join(ROOT, "bench", "config"), config)
    path = os.path.join(config, "fairsend.toml")
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"(?m)^concurrency = \d+", f"concurrency = {concurrency}", text)
    open(path, "w", encoding="utf-8").write(text)
    base = open(os.path.join(config, "campaigns", "bench.toml"), encoding="utf-8").read()
    for name in campaign_names:
        open(os.path.join(config, "campaigns", f"{name}.toml"), "w", encoding="utf-8").write(
            base.replace('name = "bench"', f'name = "{name}"')
        )
    return config


class Sink:
    """postfix's smtp-sink on loopback: accepts and discards, as fast as the machine allows."""

    def __init__(self):
        self.port = free_port()
        cmd = ["smtp-sink", "-4", f"127.0.0.1:{self.port}", "2048"]
        if os.geteuid() == 0:
            cmd[1:1] = ["-u", "nobody"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("smtp-sink did not start")

    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def smtp_source_rate(sink, concurrency, messages, size):
    """postfix's own load generator into the same sink: messages per second."""
    cmd = [
        "smtp-source", "-d", "-s", str(concurrency), "-m", str(messages), "-l", str(size),
        "-f", SENDER, "-t", "sink@example.com", f"127.0.0.1:{sink.port}",
    ]
    elapsed, _, code, _ = run_measured(cmd)
    if code != 0:
        return None
    return messages / elapsed


def mean_message_size(config, db, campaign, email):
    _, _, code, out = run_measured(fairsend(config, db, "preview", campaign, "--to", email), env=env())
    return len(out) if code == 0 else 8000


def unsubscribe_paths(config, db, campaign, emails):
    paths = []
    for email in emails:
        _, _, code, out = run_measured(fairsend(config, db, "preview", campaign, "--to", email), env=env())
        m = re.search(rb"https?://[^/>\s]+(/u/[A-Za-z0-9_\-]+)", out)
        if code == 0 and m:
            paths.append(m.group(1).decode())
    return paths


def wrk(base, paths_file, connections, seconds, rate=None):
    """Runs wrk with the bench's Lua script; returns (requests/s, p99 ms, p50 ms)."""
    script = os.path.join(ROOT, "bench", "unsubscribe.lua")
    e = dict(os.environ)
    e["BENCH_PATHS"] = paths_file
    # Fixed rate: each connection waits connections/rate between its requests.
    e["BENCH_DELAY_MS"] = str(connections * 1000.0 / rate) if rate else "0"
    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", script, base]
    out = subprocess.run(cmd, env=e, capture_output=True, text=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", out, re.M)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def ms(m):
        if not m:
            return None
        v = float(m.group(1))
        return {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]

    if non2xx:
        log(f"wrk: {non2xx.group(1)} non-2xx responses")
    return (float(rps.group(1)) if rps else None, ms(p99), ms(p50))


def cargo_bench_figure(name, pattern):
    out = subprocess.run(
        ["cargo", "bench", "--quiet", "--bench", name], cwd=ROOT, capture_output=True, text=True
    ).stdout
    m = re.search(pattern, out)
    return float(m.group(1)) if m else None


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="audiences of 1k and 10k only (about 2 minutes)")
    p.add_argument("--sizes", help="comma-separated audience sizes (default 10000,100000,1000000)")
    p.add_argument("--postgres", help="admin URL of a PostgreSQL server: also measure 1, 2 and 4 workers")
    p.add_argument("--workers-audience", type=int, default=20000)
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [1000, 10000] if args.quick else [10000, 100000, 1000000])
    work = tempfile.mkdtemp(prefix="fairsend-bench-")
    rows = []  # (measure, audience, figure, unit, target, met)
    sink = Sink()
    started = time.monotonic()
    try:
        log(f"== bench in {work}; smtp-sink on port {sink.port}")
        log("== render (cargo bench --bench render)")
        render = cargo_bench_figure("render", r"= (\d+) messages/s")
        rows.append(("render, one thread", "-", render, "messages/s", ">= 20,000", render and render >= 20000))
        log("== bounce parsing (cargo bench --bench bounce_parse)")
        bounces = cargo_bench_figure("bounce_parse", r"(\d+) messages/s")
        rows.append(("bounce parsing, one thread", "corpus", bounces, "messages/s", "-", None))

        for size in sizes:
            label = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
            d = os.path.join(work, label)
            os.makedirs(d)
            csv = os.path.join(d, "contacts.csv")
            log(f"== {label}: generating {size} contacts")
            write_contacts(csv, size)
            db = "sqlite://" + os.path.join(d, "fairsend.db")
            concurrencies = [1, 8, 32] if size == sizes[0] else [32]
            names = [f"bench-c{c}" for c in concurrencies]
            config = make_config(d, 32, names)
            log(f"== {label}: import")
            secs, rss, code, _ = run_measured(
                fairsend(config, db, "import", csv, "--register", "prospects", "--json"), env=env())
            rate = size / secs if code == 0 else None
            target = "< 30 s" if size == 1_000_000 else "-"
            rows.append(("import", label, rate, "contacts/s", target,
                         (secs < 30) if size == 1_000_000 and code == 0 else None))
            rows.append(("import peak RSS", label, rss, "MiB", "< 200" if size == 1_000_000 else "-",
                         (rss < 200) if size == 1_000_000 and code == 0 else None))
            size_bytes = None
            for c, name in zip(concurrencies, names):
                config = make_config(d, c, names)
                campaign = os.path.join(config, "campaigns", f"{name}.toml")
                log(f"== {label}: send at concurrency {c}")
                proc = spawn_measured(
                    fairsend(config, db, "send", campaign, "--transport", sink.url(), "--json"), env=env())
                t0 = time.monotonic()
                code, rss, out = wait_measured(proc)
                secs = time.monotonic() - t0
                sent = json.loads(out).get("sent", 0) if code == 0 else 0
                if size_bytes is None:
                    size_bytes = mean_message_size(config, db, campaign, "etu0.suku0@yritys0.example")
                ours = sent / secs if sent else None
                log(f"== {label}: smtp-source at concurrency {c}, {sent or size} messages of {size_bytes} bytes")
                # The rate is the rate: 100k messages measure it as well as a million.
                theirs = smtp_source_rate(sink, c, min(sent or size, 100000), size_bytes)
                ratio = ours / theirs if ours and theirs else None
                rows.append((f"send, concurrency {c}", label, ours, "messages/s", "-", None))
                rows.append((f"smtp-source, concurrency {c}", label, theirs, "messages/s", "-", None))
                rows.append((f"ratio fairsend/smtp-source, c={c}", label, ratio, "x", ">= 0.8",
                             ratio is not None and ratio >= 0.8))
                rows.append((f"send peak RSS, c={c}", label, rss, "MiB",
                             "< 200" if size == 1_000_000 else "-",
                             (rss < 200) if size == 1_000_000 else None))
            if size == sizes[0]:
                log(f"== {label}: unsubscribe endpoint under wrk")
                campaign = os.path.join(config, "campaigns", f"{names[0]}.toml")
                emails = [f"etu{i}.suku{i}@yritys{i % 9973}.example" for i in range(0, min(size, 2000), max(1, min(size, 2000) // 20))]
                paths = unsubscribe_paths(config, db, campaign, emails)
                paths_file = os.path.join(d, "paths.txt")
                open(paths_file, "w").write("\n".join(paths) + "\n")
                # The throughput rows measure the page, not the per-client rate limit (wrk
                # is one client).
                serve = subprocess.Popen(fairsend(config, db, "serve", "--listen", "127.0.0.1:0",
                                                  "--metrics-listen", "none",
                                                  "--public-rate-limit", "0"),
                                         env=env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                base = serve.stdout.readline().decode().strip().removeprefix("listening on ")
                try:
                    rps, p99, p50 = wrk(base, paths_file, 32, 10)
                    rows.append(("unsubscribe page, max throughput", label, rps, "requests/s", "-", None))
                    rows.append(("  p99 latency at max throughput", label, p99, "ms", "-", None))
                    rps, p99, p50 = wrk(base, paths_file, 10, 15, rate=500)
                    rows.append(("unsubscribe page at 500 req/s: achieved", label, rps, "requests/s", "-", None))
                    rows.append(("  p99 latency at 500 req/s", label, p99, "ms", "< 20",
                                 p99 is not None and p99 < 20))
                    rows.append(("  p50 latency at 500 req/s", label, p50, "ms", "-", None))
                finally:
                    serve.send_signal(signal.SIGTERM)
                    serve.wait()
                slow_client_rows(config, db, paths, label, rows)
            if not args.keep:
                os.remove(csv)

        if args.postgres:
            workers_rows(args, work, sink, rows)
    finally:
        sink.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows, time.monotonic() - started)


def slow_client_rows(config, db, paths, label, rows):
    """bench/slow_clients.py: 2,000 slow connections (from 8 addresses, then from 2,000) while
    other clients request the unsubscribe page; serve with its default limits, ulimit -n 1024."""
    import slow_clients
    for addresses in (8, 2000):
        log(f"== {label}: 2,000 slow connections from {addresses} addresses, unsubscribe page at 50/s")
        r = slow_clients.measure(config, db, paths, connections=2000, addresses=addresses)
        slow_clients.report(f"{addresses} addresses", r)
        name = f"slow clients ({addresses} addr.)"
        rows.append((f"{name}: page p99", label, r["p99_ms"], "ms", "< 100",
                     r["p99_ms"] is not None and r["p99_ms"] < 100))
        rows.append((f"{name}: failed requests", label, r["failures"], "requests", "0",
                     r["failures"] == 0))
        rows.append((f"{name}: peak RSS", label, r["rss_peak"], "MiB", "< 150",
                     r["rss_peak"] is not None and r["rss_peak"] < 150))
        rows.append((f"{name}: RSS after they leave", label, r["rss_after"], "MiB", "< 100",
                     r["rss_after"] is not None and r["rss_after"] < 100))


def workers_rows(args, work, sink, rows):
    """1, 2 and 4 `send` workers on one PostgreSQL campaign into the sink."""
    n = args.workers_audience
    csv = os.path.join(work, "workers.csv")
    write_contacts(csv, n)
    base, _ = args.postgres.rsplit("/", 1)
    for workers in (1, 2, 4):
        name = f"fairsend_bench_w{workers}_{os.getpid()}"
        subprocess.run(["psql", args.postgres, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", args.postgres, "-qc", f"CREATE DATABASE {name}"], check=True)
        db = f"{base}/{name}"
        d = os.path.join(work, f"w{workers}")
        os.makedirs(d)
        config = make_config(d, 8, ["bench-workers"])
        campaign = os.path.join(config, "campaigns", "bench-workers.toml")
        run_measured(fairsend(config, db, "import", csv, "--register", "prospects"), env=env())
        log(f"== PostgreSQL: {workers} worker(s), {n} recipients")
        t0 = time.monotonic()
        procs = [spawn_measured(fairsend(config, db, "send", campaign, "--transport", sink.url(), "--json"), env=env())
                 for _ in range(workers)]
        sent = 0
        for proc in procs:
            code, _, out = wait_measured(proc)
            if code == 0:
                sent += json.loads(out).get("sent", 0)
        secs = time.monotonic() - t0
        rows.append((f"PostgreSQL, {workers} worker(s), c=8 each", f"{n // 1000}k", sent / secs if sent == n else None,
                     "messages/s", "-", None))
        subprocess.run(["psql", args.postgres, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])


def print_table(rows, elapsed):
    cores = os.cpu_count()
    print(f"\nfairsend benchmark — {cores} cores, {elapsed / 60:.1f} min, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'measure':<42} {'audience':>8} {'figure':>12} {'unit':<12} {'target':<10} met")
    print("-" * 94)
    for measure, audience, figure, unit, target, met in rows:
        if figure is None:
            shown = "failed"
        elif figure >= 100:
            shown = f"{figure:,.0f}"
        else:
            shown = f"{figure:.2f}"
        mark = {True: "yes", False: "NO", None: ""}[met]
        print(f"{measure:<42} {audience:>8} {shown:>12} {unit:<12} {target:<10} {mark}")


if __name__ == "__main__":
    main()
