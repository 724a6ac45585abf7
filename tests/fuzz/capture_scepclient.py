#!/usr/bin/env python3
"""Captures the PKIOperation message Debian's `scepclient` sends, for the seed corpus.

A stand-in SCEP server on 127.0.0.1: answers GetCACaps with the capabilities given on
the command line and GetCACert with the fixture CA, stores the first PKIOperation
body it receives and answers it 500 (the client then gives up: only its request is
wanted). Usage: capture_scepclient.py CA_PEM OUT_FILE PORT_FILE CAPS...
"""
import http.server
import ssl
import sys

ca_pem, out_file, port_file, caps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with open(ca_pem) as f:
    ca_der = ssl.PEM_cert_to_DER_cert(f.read())


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if "GetCACaps" in self.path:
            self.reply(200, "text/plain", "\n".join(caps).encode())
        elif "GetCACert" in self.path:
            self.reply(200, "application/x-x509-ca-cert", ca_der)
        else:
            self.reply(404, "text/plain", b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(out_file, "wb") as f:
            f.write(body)
        self.reply(500, "text/plain", b"captured")

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_port))
import os

os.replace(port_file + ".tmp", port_file)  # the port appears whole: a readiness signal
server.handle_request()  # GetCACaps
while not os.path.exists(out_file):
    server.handle_request()
