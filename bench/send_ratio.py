#!/usr/bin/env python3
"""The send ratio alone, as an instrument: `fairsend send` and postfix's `smtp-source -d` into
the same `smtp-sink`, interleaved, several rounds per concurrency; prints the median ratio and
its spread — the ratio rows of bench/run.sh's table, without the rest. Uses bench/harness.py
(run bench/run.sh once first: it installs postfix and builds the release binary).

    python3 bench/send_ratio.py [--messages 20000] [--max-messages N] [--rounds 3] [--concurrency 1,8,32]
                                [--dkim ed25519-sha256,rsa-sha256] [--dkim-concurrency 8,32]
                                [--bin target/release/fairsend] [--label NAME]

Each round sends a fresh campaign of the same audience (one SQLite database per row), so every
round sends every message once.
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=20000, help="messages per round (default 20000)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per row (default 3)")
    p.add_argument("--max-messages", type=int,
                   help="while a row's spread exceeds ±10 %%, measure it again with twice the messages, up to this many")
    p.add_argument("--concurrency", default="1,8,32", help="concurrencies without DKIM ('' for none)")
    p.add_argument("--dkim", default="", help=f"DKIM algorithms to measure too, of {','.join(harness.DKIM_ROWS)}")
    p.add_argument("--dkim-concurrency", default="8,32")
    p.add_argument("--bin", default=harness.BIN)
    p.add_argument("--label", default="fairsend")
    args = p.parse_args()
    algorithms = [a for a in args.dkim.split(",") if a]
    unknown = [a for a in algorithms if a not in harness.DKIM_ROWS]
    if unknown:
        p.error(f"--dkim: unknown algorithm(s) {', '.join(unknown)}")
    harness.BIN = os.path.abspath(args.bin)
    work = tempfile.mkdtemp(prefix="fairsend-ratio-")
    sink = harness.Sink()
    try:
        rows = harness.ratio_rows(
            work, sink, args.messages, args.rounds,
            [int(c) for c in args.concurrency.split(",") if c],
            [int(c) for c in args.dkim_concurrency.split(",") if c], algorithms, args.max_messages)
    finally:
        sink.stop()
        shutil.rmtree(work, ignore_errors=True)
    harness.print_instruments(
        f"{args.label}: `fairsend send` / `smtp-source -d` into the same smtp-sink, SQLite, "
        f"{args.rounds} interleaved rounds of `messages` each",
        "send/s", "smtp-source/s", rows)


if __name__ == "__main__":
    main()
