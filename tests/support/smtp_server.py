#!/usr/bin/env python3
"""A real SMTP server for fairsend's integration tests (aiosmtpd on loopback).

Every accepted transaction is appended to --log as one JSON line, written and flushed before
the server answers 250, so the log is exactly what the server accepted, even if the client is
killed before it reads the reply. Behaviours for tests:

  --tempfail REGEX   answer 451 to RCPT TO the first time an address matching REGEX is seen
  --permfail REGEX   answer 550 5.1.1 to RCPT TO for addresses matching REGEX
  --delay SECONDS    wait this long in DATA before accepting (a slow server)

Prints "PORT <n>" on stdout once it is listening; runs until killed.
"""
import argparse
import asyncio
import json
import re
import signal
import socket
import sys
import time

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, args):
        self.log_path = args.log
        self.tempfail = re.compile(args.tempfail) if args.tempfail else None
        self.permfail = re.compile(args.permfail) if args.permfail else None
        self.delay = args.delay
        self.tempfailed = set()

    def event(self, record):
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.permfail and self.permfail.search(address):
            self.event({"event": "rcpt_refused", "code": 550, "rcpt": address, "at": time.time()})
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if self.tempfail and self.tempfail.search(address) and address not in self.tempfailed:
            self.tempfailed.add(address)
            self.event({"event": "rcpt_refused", "code": 451, "rcpt": address, "at": time.time()})
            return "451 4.2.2 <%s>: Mailbox full, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        self.event({
            "event": "message",
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", errors="replace"),
            "at": time.time(),
        })
        return "250 2.0.0 Ok: queued"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--log", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tempfail")
    p.add_argument("--permfail")
    p.add_argument("--delay", type=float, default=0.0)
    args = p.parse_args()
    port = args.port or free_port()
    controller = Controller(Recorder(args), hostname="127.0.0.1", port=port,
                            decode_data=False, data_size_limit=10 * 1024 * 1024)
    controller.start()
    print("PORT %d" % port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (controller.stop(), sys.exit(0)))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        controller.stop()


if __name__ == "__main__":
    main()
