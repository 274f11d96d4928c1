#!/usr/bin/env python3
"""A real SMTP server for fairsend's integration tests (aiosmtpd on loopback).

Every accepted transaction is appended to --log as one JSON line, written and flushed before
the server answers 250, so the log is exactly what the server accepted, even if the client is
killed before it reads the reply. Behaviours for tests:

  --tempfail REGEX   answer 451 to RCPT TO the first time an address matching REGEX is seen
  --permfail REGEX   answer 550 5.1.1 to RCPT TO for addresses matching REGEX
  --delay SECONDS    wait this long in DATA before accepting (a slow server)
  --rcpt-delay SECONDS  wait this long before answering each RCPT TO (a server slow to
                     answer the envelope: meanwhile the client has its next message ready)
  --drop-after-data REGEX  the first transaction to an address matching REGEX: log the message
                     as accepted ("dropped": true), then close the connection without replying
                     (RFC 5321 §6.1: the client cannot know the message arrived)
  --hang-after-data REGEX  the same, but keep the connection open and never reply (the client
                     times out)
  --drop-at-rcpt REGEX     the first RCPT TO of an address matching REGEX: close the connection
                     without replying (nothing of the message was sent)
  --idle-timeout SECONDS   close a connection that has been silent this long, without a word
                     (as servers do with idle clients)
  --starttls CERT KEY  offer STARTTLS with this certificate chain and key, and require it
                     before MAIL FROM; each message is logged with "tls"
  --tls-wrapper CERT KEY  TLS from the first byte (smtps, port 465 style) with this
                     certificate chain and key
  --auth USER:PASSWORD  require AUTH (PLAIN or LOGIN, only after STARTTLS) with these
                     credentials; each attempt is logged as an "auth" event (user, ok)
  --pipelining       offer ESMTP PIPELINING (RFC 2920); each message is logged with
                     "pipelined": whether DATA had already arrived when RCPT TO was handled,
                     and "commands_behind": whether the next transaction's MAIL FROM had
                     already arrived behind this message's end-of-data dot

Prints "PORT <n>" on stdout once it is listening; runs until killed.
"""
import argparse
import asyncio
import json
import re
import signal
import socket
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Recorder:
    def __init__(self, args):
        self.log_path = args.log
        self.tempfail = re.compile(args.tempfail) if args.tempfail else None
        self.permfail = re.compile(args.permfail) if args.permfail else None
        self.delay = args.delay
        self.rcpt_delay = args.rcpt_delay
        self.tempfailed = set()
        self.drop_after_data = re.compile(args.drop_after_data) if args.drop_after_data else None
        self.hang_after_data = re.compile(args.hang_after_data) if args.hang_after_data else None
        self.drop_at_rcpt = re.compile(args.drop_at_rcpt) if args.drop_at_rcpt else None
        self.faulted = set()
        self.credentials = tuple(args.auth.split(":", 1)) if args.auth else None

    def first_fault(self, kind, pattern, address):
        """Whether this address matches a fault's pattern for the first time."""
        if not pattern or not pattern.search(address) or (kind, address) in self.faulted:
            return False
        self.faulted.add((kind, address))
        return True

    def event(self, record):
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        if self.permfail and self.permfail.search(address):
            self.event({"event": "rcpt_refused", "code": 550, "rcpt": address, "at": time.time()})
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if self.tempfail and self.tempfail.search(address) and address not in self.tempfailed:
            self.tempfailed.add(address)
            self.event({"event": "rcpt_refused", "code": 451, "rcpt": address, "at": time.time()})
            return "451 4.2.2 <%s>: Mailbox full, try again later" % address
        if self.first_fault("rcpt", self.drop_at_rcpt, address):
            self.event({"event": "dropped_at_rcpt", "rcpt": address, "at": time.time()})
            return await self.vanish(server)
        envelope.rcpt_tos.append(address)
        # What the client wrote after RCPT TO and the server has not read yet.
        envelope.pipelined = b"DATA\r\n" in bytes(getattr(server._reader, "_buffer", b""))
        return "250 2.1.5 OK"

    async def vanish(self, server, close=True):
        """Never answer: close the connection (or leave it hanging) and wait to be cancelled
        when the connection is lost, so the server writes no reply."""
        if close:
            server.transport.abort()
        await asyncio.sleep(3600)
        return "421 4.3.0 closing"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        user = auth_data.login.decode("utf-8", errors="replace")
        ok = (user, auth_data.password.decode("utf-8", errors="replace")) == self.credentials
        self.event({"event": "auth", "mechanism": mechanism, "user": user, "ok": ok,
                    "at": time.time()})
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        drop = self.first_fault("drop", self.drop_after_data, rcpt)
        hang = not drop and self.first_fault("hang", self.hang_after_data, rcpt)
        record = {
            "event": "message",
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", errors="replace"),
            "pipelined": getattr(envelope, "pipelined", False),
            # What the client wrote after the end-of-data dot and the server has not read yet.
            "commands_behind": b"MAIL FROM" in bytes(getattr(server._reader, "_buffer", b"")),
            "tls": session.ssl is not None
                   or server.transport.get_extra_info("ssl_object") is not None,
            "at": time.time(),
        }
        if drop or hang:
            # Accepted (the message is logged, as a server that committed it before its reply
            # was lost), but the client never hears so.
            record["dropped"] = True
            self.event(record)
            return await self.vanish(server, close=drop)
        self.event(record)
        return "250 2.0.0 Ok: queued"


class PipeliningRecorder(Recorder):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:]


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
    p.add_argument("--rcpt-delay", type=float, default=0.0)
    p.add_argument("--drop-after-data")
    p.add_argument("--hang-after-data")
    p.add_argument("--drop-at-rcpt")
    p.add_argument("--idle-timeout", type=float, default=300.0)
    p.add_argument("--pipelining", action="store_true")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls-wrapper", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth")
    args = p.parse_args()
    port = args.port or free_port()
    handler = PipeliningRecorder(args) if args.pipelining else Recorder(args)
    tls = {}
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.starttls)
        tls = {"tls_context": context, "require_starttls": True}
    if args.tls_wrapper:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.tls_wrapper)
        tls["ssl_context"] = context
        # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is TLS from the start.
        tls["auth_require_tls"] = False
    if args.auth:
        tls.update(authenticator=handler.authenticate, auth_required=True)
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            decode_data=False, data_size_limit=10 * 1024 * 1024,
                            timeout=args.idle_timeout, **tls)
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
