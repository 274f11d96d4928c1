#!/usr/bin/env python3
"""fairsend benchmark harness: throughput and memory against the limits of the machine.

Run through bench/run.sh (which installs the tools and builds the release binaries). Prints a
table of single figures (render, import, send per audience size, the unsubscribe page, slow
clients) and tables of instruments: figures measured in interleaved rounds beside a reference
on the same machine at the same moment (the send ratio against `smtp-source -d`, with and
without DKIM; PostgreSQL workers against one SQLite process), each with its median and spread.
Every figure is measured in this run. See bench/README.md for what each row means.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

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
    proc.cpu_seconds = usage.ru_utime + usage.ru_stime
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


def make_config(workdir, concurrency, campaign_names, dkim=None):
    """A copy of bench/config with the given concurrency and one campaign file per name; with
    dkim = (algorithm, key file), a [dkim] section signing every message with that key."""
    config = os.path.join(workdir, "config")
    if os.path.exists(config):
        shutil.rmtree(config)
    shutil.copytree(os.path.join(ROOT, "bench", "config"), config)
    path = os.path.join(config, "fairsend.toml")
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"(?m)^concurrency = \d+", f"concurrency = {concurrency}", text)
    if dkim:
        algorithm, key_file = dkim
        text += (f'\n[dkim]\ndomain = "example.com"\nselector = "bench"\n'
                 f'algorithm = "{algorithm}"\nprivate_key_file = "{key_file}"\n')
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


def make_dkim_key(directory, algorithm):
    """A fresh private key (PEM, PKCS#8) for "ed25519-sha256" or "rsa-sha256" (2048 bits), made
    by openssl, or by Python's `cryptography` where openssl is missing. Only the harness's
    temporary directory ever holds it."""
    path = os.path.join(directory, f"dkim-{algorithm}.pem")
    ed25519 = algorithm.startswith("ed25519")
    if shutil.which("openssl"):
        args = ["-algorithm", "ed25519"] if ed25519 else ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        subprocess.run(["openssl", "genpkey", *args, "-out", path], check=True, capture_output=True)
    else:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519 as ed, rsa
        key = ed.Ed25519PrivateKey.generate() if ed25519 else rsa.generate_private_key(65537, 2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        open(path, "wb").write(pem)
    os.chmod(path, 0o600)
    return path


def spread(values):
    """(median, min, max, ± % of the median: the larger distance of min or max from it)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None, None, None
    median = statistics.median(values)
    pct = max(median - min(values), max(values) - median) / median * 100 if median else None
    return median, min(values), max(values), pct


class Instrument:
    """One row measured in interleaved rounds: per round a figure (ours), a reference figure
    (theirs) and their ratio. The table shows the medians and the spread of the ratio."""

    def __init__(self, measure, concurrency, messages, target=None, longer="--messages"):
        self.measure, self.concurrency, self.messages = measure, concurrency, messages
        self.target = target  # the ratio's threshold, or None
        self.longer = longer  # the option that makes a round longer
        self.ours, self.theirs, self.ratios = [], [], []
        self.note = ""

    def add(self, ours, theirs):
        self.ours.append(ours)
        self.theirs.append(theirs)
        self.ratios.append(ours / theirs if ours and theirs else None)

    def met(self):
        median = spread(self.ratios)[0]
        if self.target is None or median is None:
            return None
        return median >= self.target and None not in self.ratios


def timed_send(config, db, campaign, sink, *extra):
    """One `fairsend send` into the sink: (messages/s from start to exit, messages sent, peak
    RSS MiB); the rate is None if the run failed."""
    t0 = time.monotonic()
    code, rss, out = wait_measured(spawn_measured(
        fairsend(config, db, "send", campaign, "--transport", sink.url(), "--json", *extra), env=env()))
    secs = time.monotonic() - t0
    sent = sent_count(out) if code == 0 else 0
    return (sent / secs if sent else None), sent, rss


def sent_count(out):
    """The "sent" of `send --json`'s report: the object that starts a line at its first column
    (the DNS findings of the pre-flight may come before it)."""
    text = out.decode(errors="replace")
    start = 0 if text.startswith("{") else text.find("\n{") + 1
    return json.loads(text[start:]).get("sent", 0) if text.strip() else 0


def ratio_row(work, sink, csv, messages, concurrency, rounds, dkim=None, label="no DKIM", target=0.8):
    """`fairsend send` and `smtp-source -d` into the same sink, interleaved: `rounds` rounds,
    each a fresh campaign of the same `messages` contacts (one SQLite database per row), the
    order of the pair alternating between rounds so that a drift of the machine hits both.
    smtp-source is 3-5 times faster: sending as many messages, its run would be a fraction of
    a second, and one burst of another process's work would halve its figure. So it sends as
    many as it can in the time the send took (from its last rate; at least `messages`): the
    two sides are measured over windows of the same length."""
    d = os.path.join(work, f"ratio-{label.replace(' ', '-')}-c{concurrency}-{messages}")
    os.makedirs(d)
    names = [f"ratio-r{r}" for r in range(rounds)]
    config = make_config(d, concurrency, names, dkim)
    db = "sqlite://" + os.path.join(d, "fairsend.db")
    _, _, code, _ = run_measured(fairsend(config, db, "import", csv, "--register", "prospects"), env=env())
    row = Instrument(f"send / smtp-source, {label}", concurrency, messages, target)
    if code != 0:
        row.note = "import failed"
        return row
    first = os.path.join(config, "campaigns", f"{names[0]}.toml")
    size = mean_message_size(config, db, first, "etu0.suku0@yritys0.example")
    extra = ["--allow-dns-problems"] if dkim else []
    source_rate = smtp_source_rate(sink, concurrency, messages, size)  # a first estimate
    window = None
    for r, name in enumerate(names):
        campaign = os.path.join(config, "campaigns", f"{name}.toml")
        if r % 2 == 0:
            ours, sent, _ = timed_send(config, db, campaign, sink, *extra)
            window = messages / ours if ours else window
        count = source_count(messages, source_rate, window)
        theirs = smtp_source_rate(sink, concurrency, count, size)
        source_rate = theirs or source_rate
        if r % 2 == 1:
            ours, sent, _ = timed_send(config, db, campaign, sink, *extra)
            window = messages / ours if ours else window
        if sent != messages:
            ours = None
        row.add(ours, theirs)
        log(f"   {label} c={concurrency} round {r + 1}/{rounds}: send {ours or 0:.0f}/s ({sent} sent), "
            f"smtp-source {theirs or 0:.0f}/s ({count} messages of {size} B), ratio {row.ratios[-1] or 0:.3f}")
    return row


def source_count(messages, rate, window):
    """How many messages smtp-source sends to run about `window` seconds at `rate`: at least
    `messages`, at most 20 times as many."""
    if not rate or not window:
        return messages
    return max(messages, min(20 * messages, round(rate * window)))


def ratio_rows(work, sink, messages, rounds, concurrencies, dkim_concurrencies=(), dkim_algorithms=(),
               max_messages=None):
    """The send-ratio rows: no DKIM at each concurrency, then each DKIM algorithm at its own."""
    specs = [(c, None, "no DKIM", 0.8) for c in concurrencies]
    for algorithm in dkim_algorithms:
        key = make_dkim_key(work, algorithm)
        label, target = DKIM_ROWS[algorithm]
        specs += [(c, (algorithm, key), label, target) for c in dkim_concurrencies]
    return [steady_ratio_row(work, sink, messages, rounds, max_messages or messages, *spec) for spec in specs]


def steady_ratio_row(work, sink, messages, rounds, max_messages, concurrency, dkim, label, target):
    """One ratio row; while its spread exceeds the limit and twice the messages stay within
    max_messages, measured again with twice as many (a longer run averages more noise out)."""
    while True:
        log(f"== send ratio, {label}, concurrency {concurrency}: {rounds} rounds of {messages} messages")
        row = ratio_row(work, sink, contacts_file(work, messages), messages, concurrency, rounds, dkim, label, target)
        pct = spread(row.ratios)[3]
        if pct is None or pct <= SPREAD_LIMIT or messages * 2 > max_messages:
            return row
        log(f"   spread ±{pct:.1f} % > ±{SPREAD_LIMIT} %: again with {messages * 2} messages per round")
        messages *= 2


def contacts_file(work, n):
    path = os.path.join(work, f"contacts-{n}.csv")
    if not os.path.exists(path):
        write_contacts(path, n)
    return path


# The spread (± % of the median) beyond which an instrument row is not to be trusted (issue 21).
SPREAD_LIMIT = 10

# The DKIM rows: the label in the table and the ratio target (issue 21: >= 0.6 with ed25519;
# RSA-2048 is measured beside it, without a target).
DKIM_ROWS = {"ed25519-sha256": ("DKIM ed25519", 0.6), "rsa-sha256": ("DKIM RSA-2048", None)}


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


SECTIONS = ("render", "sizes", "ratio", "dkim", "postgres")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="audiences of 1k and 10k, 5,000 messages per ratio round (a few minutes)")
    p.add_argument("--sizes", help="comma-separated audience sizes (default 10000,100000,1000000)")
    p.add_argument("--messages", type=int,
                   help="messages per round of the ratio rows (default 20000; 5000 with --quick)")
    p.add_argument("--max-messages", type=int,
                   help="while a ratio row's spread exceeds ±10 %%, measure it again with twice the messages, "
                        "up to this many (default: --messages, i.e. never)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per ratio row (default 3)")
    p.add_argument("--concurrency", default="1,8,32", help="concurrencies of the ratio rows without DKIM")
    p.add_argument("--dkim-concurrency", default="8,32", help="concurrencies of the DKIM ratio rows")
    p.add_argument("--postgres", help="admin URL of a PostgreSQL server: also measure 1, 2 and 4 workers")
    p.add_argument("--workers-audience", type=int, default=20000,
                   help="messages per round of the PostgreSQL rows (default 20000)")
    p.add_argument("--only", help=f"comma-separated sections to run, of {','.join(SECTIONS)} (default: all; "
                                  "postgres only with --postgres)")
    p.add_argument("--bin", default=BIN, help="the fairsend binary (default target/release/fairsend)")
    p.add_argument("--json", metavar="FILE", help="also write every figure, and each round of the instruments, to FILE")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [1000, 10000] if args.quick else [10000, 100000, 1000000])
    if args.messages is None:
        args.messages = 5000 if args.quick else 20000
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    args.dkim_concurrency = [int(c) for c in args.dkim_concurrency.split(",") if c]
    args.only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = args.only - set(SECTIONS)
    if unknown:
        p.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def main():
    global BIN
    args = parse_args()
    BIN = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="fairsend-bench-")
    rows = []  # (measure, audience, figure, unit, target, met)
    ratios, workers = [], []  # Instrument rows
    cpu = []  # CpuPerMessage of the PostgreSQL rounds
    sink = Sink()
    started = time.monotonic()
    try:
        log(f"== bench in {work}; smtp-sink on port {sink.port}; {BIN}")
        if "render" in args.only:
            render_rows(rows)
        if "sizes" in args.only:
            for size in args.sizes:
                size_rows(work, sink, size, size == args.sizes[0], args.keep, rows)
        if "ratio" in args.only or "dkim" in args.only:
            ratios = ratio_rows(
                work, sink, args.messages, args.rounds,
                args.concurrency if "ratio" in args.only else [],
                args.dkim_concurrency if "dkim" in args.only else [],
                list(DKIM_ROWS) if "dkim" in args.only else [], args.max_messages)
        if args.postgres and "postgres" in args.only:
            workers, cpu = workers_rows(args, work, sink)
    finally:
        sink.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows, time.monotonic() - started)
    if ratios:
        print_instruments(
            f"send ratio: `fairsend send` / `smtp-source -d` into the same smtp-sink, SQLite, "
            f"{args.rounds} interleaved rounds of `messages` each",
            "send/s", "smtp-source/s", ratios)
    if workers:
        print_instruments(
            f"PostgreSQL: N `send` workers on one campaign (c=8 each) / one SQLite `send` (c=8), "
            f"{args.rounds} interleaved rounds of `messages` each, {os.cpu_count()} cores",
            "figure/s", "SQLite/s", workers)
    if cpu:
        print_cpu(cpu)
    if args.json:
        write_json(args.json, rows, ratios + workers, cpu)


def write_json(path, rows, instruments, cpu=()):
    """The tables as data, with the figures of every round (for the closing note of a run)."""
    keys = ("measure", "audience", "figure", "unit", "target", "met")
    data = {
        "cores": os.cpu_count(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bin": BIN,
        "figures": [dict(zip(keys, row)) for row in rows],
        "instruments": [{
            "measure": i.measure, "concurrency": i.concurrency, "messages": i.messages,
            "target": i.target, "met": i.met(), "ours": i.ours, "theirs": i.theirs, "ratios": i.ratios,
            "ratio": dict(zip(("median", "min", "max", "spread_pct"), spread(i.ratios))),
        } for i in instruments],
        "cpu_per_message_us": [{
            "configuration": c.label, "rounds": [dict(zip(("fairsend", "server", "sink"), r)) for r in c.rounds],
        } for c in cpu],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)


def render_rows(rows):
    log("== render (cargo bench --bench render)")
    render = cargo_bench_figure("render", r"= (\d+) messages/s")
    rows.append(("render, one thread", "-", render, "messages/s", ">= 20,000", render and render >= 20000))
    log("== bounce parsing (cargo bench --bench bounce_parse)")
    bounces = cargo_bench_figure("bounce_parse", r"(\d+) messages/s")
    rows.append(("bounce parsing, one thread", "corpus", bounces, "messages/s", "-", None))


def size_rows(work, sink, size, first, keep, rows):
    """Import of `size` contacts (rate, peak RSS) and one send of them all at concurrency 32
    (rate, peak RSS); for the first size also the unsubscribe page and the slow clients."""
    label = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
    million = size == 1_000_000
    d = os.path.join(work, label)
    os.makedirs(d)
    csv = os.path.join(d, "contacts.csv")
    log(f"== {label}: generating {size} contacts")
    write_contacts(csv, size)
    db = "sqlite://" + os.path.join(d, "fairsend.db")
    name = "bench-c32"
    config = make_config(d, 32, [name])
    campaign = os.path.join(config, "campaigns", f"{name}.toml")
    log(f"== {label}: import")
    secs, rss, code, _ = run_measured(
        fairsend(config, db, "import", csv, "--register", "prospects", "--json"), env=env())
    ok = code == 0
    rows.append(("import", label, size / secs if ok else None, "contacts/s", "-", None))
    rows.append(("import time", label, secs if ok else None, "s", "< 30 s" if million else "-",
                 (secs < 30) if million and ok else None))
    rows.append(("import peak RSS", label, rss, "MiB", "< 200 MB" if million else "-",
                 (rss < 200) if million and ok else None))
    log(f"== {label}: send at concurrency 32")
    rate, sent, rss = timed_send(config, db, campaign, sink)
    rows.append(("send, concurrency 32 (one run)", label, rate if sent == size else None, "messages/s", "-", None))
    rows.append(("send peak RSS, c=32", label, rss, "MiB", "< 100 MB" if million else "-",
                 (rss < 100) if million and sent == size else None))
    if first:
        unsubscribe_rows(d, config, db, campaign, size, label, rows)
    if not keep:
        os.remove(csv)


def unsubscribe_rows(d, config, db, campaign, size, label, rows):
    log(f"== {label}: unsubscribe endpoint under wrk")
    emails = [f"etu{i}.suku{i}@yritys{i % 9973}.example" for i in range(0, min(size, 2000), max(1, min(size, 2000) // 20))]
    paths = unsubscribe_paths(config, db, campaign, emails)
    paths_file = os.path.join(d, "paths.txt")
    open(paths_file, "w").write("\n".join(paths) + "\n")
    # The throughput rows measure the page, not the per-client rate limit (wrk is one client).
    serve = subprocess.Popen(fairsend(config, db, "serve", "--listen", "127.0.0.1:0",
                                      "--metrics-listen", "none", "--public-rate-limit", "0"),
                             env=env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    base = serve.stdout.readline().decode().strip().removeprefix("listening on ")
    try:
        if not shutil.which("wrk"):
            raise FileNotFoundError("wrk")
        rps, p99, p50 = wrk(base, paths_file, 32, 10)
        rows.append(("unsubscribe page, max throughput", label, rps, "requests/s", "-", None))
        rows.append(("  p99 latency at max throughput", label, p99, "ms", "-", None))
        rps, p99, p50 = wrk(base, paths_file, 10, 15, rate=500)
        rows.append(("unsubscribe page at 500 req/s: achieved", label, rps, "requests/s", "-", None))
        rows.append(("  p99 latency at 500 req/s", label, p99, "ms", "< 20", p99 is not None and p99 < 20))
        rows.append(("  p50 latency at 500 req/s", label, p50, "ms", "-", None))
    except FileNotFoundError:
        log("wrk is not installed (bench/run.sh installs it): no unsubscribe page rows")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait()
    slow_client_rows(config, db, paths, label, rows)


def slow_client_rows(config, db, paths, label, rows):
    """bench/slow_clients.py: 2,000 slow connections (from 8 addresses, then from 2,000) while
    other clients request the unsubscribe page; serve with its default limits, ulimit -n 1024."""
    import slow_clients
    slow_clients.BIN = BIN
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


def workers_rows(args, work, sink):
    """1, 2 and 4 `send` workers on one PostgreSQL campaign into the sink, each round beside one
    SQLite `send` of the same audience at the same concurrency (8): the issue's figure is the
    4 workers' rate per core used, min(workers, cores of the machine), against that one process."""
    n, rounds, cores = args.workers_audience, args.rounds, os.cpu_count() or 1
    csv = os.path.join(work, "workers.csv")
    write_contacts(csv, n)
    names = [f"bench-workers-r{r}" for r in range(rounds)]
    base, _ = args.postgres.rsplit("/", 1)
    setups = {}
    for workers in (1, 2, 4):
        name = f"fairsend_bench_w{workers}_{os.getpid()}"
        drop_database(args.postgres, name)
        if psql(args.postgres, f"CREATE DATABASE {name}").returncode != 0:
            raise SystemExit(f"could not create the PostgreSQL database {name} through {args.postgres}")
        setups[workers] = (f"{base}/{name}", os.path.join(work, f"w{workers}"), name)
    setups[0] = ("sqlite://" + os.path.join(work, "w-sqlite", "fairsend.db"), os.path.join(work, "w-sqlite"), None)
    configs = {}
    for key, (db, d, _) in setups.items():
        os.makedirs(d)
        configs[key] = make_config(d, 8, names)
        log(f"== PostgreSQL rows: importing {n} contacts into {'SQLite' if key == 0 else f'database {key}'}")
        run_measured(fairsend(configs[key], db, "import", csv, "--register", "prospects"), env=env())
    rows = [Instrument(f"PostgreSQL, {w} worker{'s' if w > 1 else ''}", 8, n, longer="--workers-audience")
            for w in (1, 2, 4)]
    per_core = Instrument(f"PostgreSQL, 4 workers per core used (/{min(4, cores)})", 8, n, 0.5,
                          longer="--workers-audience")
    cpu = {0: CpuPerMessage("SQLite, one process")}
    cpu.update({w: CpuPerMessage(f"PostgreSQL, {w} worker{'s' if w > 1 else ''}") for w in (1, 2, 4)})
    try:
        for r, name in enumerate(names):
            campaign = lambda key: os.path.join(configs[key], "campaigns", f"{name}.toml")  # noqa: E731
            # SQLite, 1, 2, 4 workers; the next round in the reverse order (a drift hits all).
            order = [0, 1, 2, 4] if r % 2 == 0 else [4, 2, 1, 0]
            rates = {}
            for key in order:
                log(f"== PostgreSQL round {r + 1}/{rounds}: "
                    + ("one SQLite send" if key == 0 else f"{key} worker(s)") + f", {n} recipients")
                rates[key] = workers_rate(configs[key], setups[key][0], campaign(key), sink, max(key, 1), n,
                                          cpu[key])
            sqlite = rates[0]
            for row, workers in zip(rows, (1, 2, 4)):
                row.add(rates[workers], sqlite)
            per_core.add(rows[2].ours[-1] / min(4, cores) if rows[2].ours[-1] else None, sqlite)
            log(f"   SQLite {sqlite or 0:.0f}/s; PostgreSQL " + ", ".join(
                f"{w}: {row.ours[-1] or 0:.0f}/s" for w, row in zip((1, 2, 4), rows)))
    finally:
        for db, d, name in setups.values():
            if name:
                drop_database(args.postgres, name)
    return rows + [per_core], [cpu[key] for key in (0, 1, 2, 4)]


def proc_stat(pid):
    """(command name, the fields after it) of /proc/PID/stat, or None if it cannot be read. The
    name is cut at the last parenthesis: it may itself hold spaces and parentheses."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    head, tail = stat.rsplit(")", 1)
    return head[head.index("(") + 1:], tail.split()


def process_cpu(pid, reaped=False):
    """CPU seconds (user + system) of a process from /proc, with those of its children it has
    reaped if `reaped`; None if it cannot be read."""
    stat = proc_stat(pid)
    if stat is None:
        return None
    fields = stat[1]
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def local_postgres_cpu():
    """CPU seconds of a PostgreSQL server on this machine: its postmaster's with every backend
    it has reaped (a `send`'s connections end with it), and those of the processes still
    running under it (WAL writer, checkpointer, autovacuum). None if there is no local
    server whose processes can be read (a remote --postgres, another user's server)."""
    stats = {int(e): proc_stat(e) for e in os.listdir("/proc") if e.isdigit()}
    commands = {pid: s[0] for pid, s in stats.items() if s}
    parents = {pid: int(s[1][1]) for pid, s in stats.items() if s}
    masters = [pid for pid, comm in commands.items()
               if comm == "postgres" and commands.get(parents[pid]) != "postgres"]
    if len(masters) != 1:
        return None
    master = masters[0]
    total = process_cpu(master, reaped=True)
    if total is None:
        return None
    return total + sum(process_cpu(pid, reaped=True) or 0 for pid, parent in parents.items() if parent == master)


class CpuPerMessage:
    """CPU microseconds per message of a configuration's processes, one entry per round:
    the `send` processes, the PostgreSQL server (if local), and smtp-sink."""

    def __init__(self, label):
        self.label = label
        self.rounds = []  # (fairsend, server or None, sink) in µs per message

    def median(self, index):
        values = [r[index] for r in self.rounds if r[index] is not None]
        return statistics.median(values) if values else None


def psql(admin_url, sql):
    e = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    return subprocess.run(["psql", admin_url, "-qc", sql], env=e, capture_output=True, text=True)


def drop_database(admin_url, name):
    """Drops a bench database; an autovacuum worker may still be in it for a moment (and WITH
    (FORCE) may not end it for a role that is not a superuser), so it tries a few times."""
    for _ in range(10):
        if psql(admin_url, f"DROP DATABASE IF EXISTS {name}").returncode == 0:
            return
        time.sleep(1)
    log(f"could not drop the PostgreSQL database {name}: drop it by hand")


def workers_rate(config, db, campaign, sink, workers, n, cpu=None):
    """`workers` processes sending one campaign: messages/s from the first start to the last
    exit, or None unless together they sent all n. With `cpu` (a CpuPerMessage), adds the
    round's CPU per message: the workers', the local PostgreSQL server's (for a PostgreSQL
    database) and smtp-sink's."""
    server_before = local_postgres_cpu() if db.startswith("postgres") else None
    sink_before = process_cpu(sink.proc.pid)
    t0 = time.monotonic()
    procs = [spawn_measured(fairsend(config, db, "send", campaign, "--transport", sink.url(), "--json"), env=env())
             for _ in range(workers)]
    sent = 0
    for proc in procs:
        code, _, out = wait_measured(proc)
        if code == 0:
            sent += sent_count(out)
    secs = time.monotonic() - t0
    if cpu is not None and sent:
        if server_before is not None:
            # The backends exit as their connections close, just after the workers: wait for
            # the postmaster to reap them.
            time.sleep(0.5)
        server_after = local_postgres_cpu() if server_before is not None else None
        sink_after = process_cpu(sink.proc.pid)
        per = lambda before, after: (after - before) / sent * 1e6 if None not in (before, after) else None  # noqa: E731
        cpu.rounds.append((sum(p.cpu_seconds for p in procs) / sent * 1e6,
                           per(server_before, server_after), per(sink_before, sink_after)))
    return n / secs if sent == n else None


def shown(figure):
    if figure is None:
        return "failed"
    return f"{figure:,.0f}" if figure >= 100 else f"{figure:.2f}"


def print_table(rows, elapsed):
    cores = os.cpu_count()
    print(f"\nfairsend benchmark — {cores} cores, {elapsed / 60:.1f} min, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if not rows:
        return
    print(f"{'measure':<46} {'audience':>8} {'figure':>12} {'unit':<12} {'target':<10} met")
    print("-" * 98)
    for measure, audience, figure, unit, target, met in rows:
        mark = {True: "yes", False: "NO", None: ""}[met]
        print(f"{measure:<46} {audience:>8} {shown(figure):>12} {unit:<12} {target:<10} {mark}")


def print_instruments(title, ours_name, theirs_name, rows):
    """Medians of each side, the ratio's median, min–max and ± % of its median; a row whose
    spread exceeds ±10 % says so (a longer run, --messages, narrows it)."""
    print(f"\n{title}")
    print(f"{'measure':<44} {'c':>3} {'messages':>8} {ours_name:>10} {theirs_name:>14} {'ratio':>6} {'min–max':>13} "
          f"{'spread':>8} {'target':<7} {'met':<4} note")
    print("-" * 134)
    for row in rows:
        ours, theirs = spread(row.ours)[0], spread(row.theirs)[0]
        median, low, high, pct = spread(row.ratios)
        failed = None in row.ratios
        notes = [row.note] if row.note else []
        if failed:
            notes.append(f"{row.ratios.count(None)} round(s) failed")
        if pct is not None and pct > SPREAD_LIMIT:
            notes.append(f"spread > ±{SPREAD_LIMIT} %: run longer ({row.longer})")
        ratio = f"{median:.3f}" if median is not None else "failed"
        span = f"{low:.3f}–{high:.3f}" if median is not None else "-"
        pct_shown = f"±{pct:.1f} %" if pct is not None else "-"
        target = f">= {row.target}" if row.target is not None else "-"
        mark = {True: "yes", False: "NO", None: ""}[row.met()]
        print(f"{row.measure:<44} {row.concurrency:>3} {row.messages:>8,} {shown(ours):>10} {shown(theirs):>14} {ratio:>6} "
              f"{span:>13} {pct_shown:>8} {target:<7} {mark:<4} {'; '.join(notes)}")


def print_cpu(cpu):
    """The PostgreSQL rounds' CPU per message, medians: what each message costs the machine in
    each configuration, and the rate that cost allows on all its cores if none of them ever
    waited. Where the ceiling of 4 workers is below the SQLite figure, no number of workers
    reaches the per-core target on this machine: only less CPU per message would."""
    cores = os.cpu_count() or 1
    print(f"\nCPU per message in the PostgreSQL rounds (µs, medians; ceiling = {cores} cores × 1 s / total)")
    print(f"{'configuration':<28} {'fairsend':>9} {'PostgreSQL':>11} {'smtp-sink':>10} {'total':>8} {'ceiling/s':>10}")
    print("-" * 81)
    for c in cpu:
        parts = [c.median(i) for i in range(3)]
        known = [p for p in parts if p is not None]
        total = sum(known) if known else None
        cells = [f"{p:,.0f}" if p is not None else "-" for p in parts]
        ceiling = f"{cores * 1e6 / total:,.0f}" if total else "-"
        total_shown = f"{total:,.0f}" if total else "-"
        print(f"{c.label:<28} {cells[0]:>9} {cells[1]:>11} {cells[2]:>10} {total_shown:>8} {ceiling:>10}")


if __name__ == "__main__":
    main()
