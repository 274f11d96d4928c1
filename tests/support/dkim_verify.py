#!/usr/bin/env python3
"""Verifies DKIM signatures with dkimpy, an implementation independent of fairsend's.

    dkim_verify.py TXT_RECORD FILE...

TXT_RECORD is what `selector._domainkey.domain` publishes; every lookup is answered with it,
so nothing leaves the machine. Prints one line per file: "ok FILE" or "FAIL FILE"; exits 1 if
any signature does not verify.
"""
import sys

import dkim


def main():
    record = sys.argv[1].encode()
    failed = 0
    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            message = f.read()
        ok = dkim.verify(message, dnsfunc=lambda name, timeout=5: record)
        print(("ok " if ok else "FAIL ") + path)
        failed += 0 if ok else 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
