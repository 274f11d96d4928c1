"""A loopback HTTPS file server for the webhook tests: serves DIR with CERT/KEY (signed by the
test's CA), prints its port, and appends each request's path to LOG (the tests count fetches)."""
import http.server
import os
import ssl
import sys

directory, cert, key, log = sys.argv[1:5]
os.chdir(directory)


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        with open(log, "a") as f:
            f.write(self.path + "\n")


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
