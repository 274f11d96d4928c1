#!/usr/bin/env python3
"""The send ratio alone, as an instrument: `fairsend send` and postfix's `smtp-source -d` into
the same `smtp-sink`, interleaved, several rounds per concurrency; prints the median ratio and
its spread. Uses bench/harness.py's pieces (run bench/run.sh once first: it installs postfix
and builds the release binary).

    python3 bench/send_ratio.py [--messages 5000] [--rounds 3] [--concurrency 1,8,32]
                                [--bin target/release/fairsend] [--label NAME]

Each round sends a fresh campaign of the same audience (one SQLite database per run of this
script), so every round sends every message once.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--bin", default=harness.BIN)
    p.add_argument("--label", default="fairsend")
    args = p.parse_args()
    harness.BIN = os.path.abspath(args.bin)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    work = tempfile.mkdtemp(prefix="fairsend-ratio-")
    csv = os.path.join(work, "contacts.csv")
    harness.write_contacts(csv, args.messages)
    db = "sqlite://" + os.path.join(work, "fairsend.db")
    names = [f"ratio-c{c}-r{r}" for c in concurrencies for r in range(args.rounds)]
    config = harness.make_config(work, 8, names)
    _, _, code, _ = harness.run_measured(
        harness.fairsend(config, db, "import", csv, "--register", "prospects", "--json"), env=harness.env())
    if code != 0:
        raise SystemExit("import failed")
    sink = harness.Sink()
    size = None
    results = {}
    try:
        for c in concurrencies:
            ratios, ours_all, theirs_all = [], [], []
            for r in range(args.rounds):
                config = harness.make_config(work, c, names)
                campaign = os.path.join(config, "campaigns", f"ratio-c{c}-r{r}.toml")
                t0 = time.monotonic()
                code, _, out = harness.wait_measured(harness.spawn_measured(
                    harness.fairsend(config, db, "send", campaign, "--transport", sink.url(), "--json"),
                    env=harness.env()))
                secs = time.monotonic() - t0
                sent = json.loads(out).get("sent", 0) if code == 0 else 0
                if size is None:
                    size = harness.mean_message_size(config, db, campaign, "etu0.suku0@yritys0.example")
                ours = sent / secs if sent else 0.0
                theirs = harness.smtp_source_rate(sink, c, args.messages, size) or 0.0
                ratio = ours / theirs if theirs else 0.0
                harness.log(f"{args.label} c={c} round {r + 1}: send {ours:.0f}/s ({sent} sent), "
                            f"smtp-source {theirs:.0f}/s, ratio {ratio:.3f}")
                ratios.append(ratio)
                ours_all.append(ours)
                theirs_all.append(theirs)
            results[c] = (statistics.median(ratios), min(ratios), max(ratios),
                          statistics.median(ours_all), statistics.median(theirs_all))
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.label}: {args.messages} messages of {size} bytes, {args.rounds} interleaved rounds")
    print(f"{'concurrency':>11} {'send/s':>8} {'smtp-source/s':>14} {'ratio (median)':>15} {'min':>6} {'max':>6}")
    for c, (median, low, high, ours, theirs) in results.items():
        print(f"{c:>11} {ours:>8.0f} {theirs:>14.0f} {median:>15.3f} {low:>6.3f} {high:>6.3f}")


if __name__ == "__main__":
    main()
