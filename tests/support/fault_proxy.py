#!/usr/bin/python3
"""A registry in front of a real one that injects the faults a real registry cannot be made
to produce on demand: rate limits, overloads, dropped connections, bodies cut in the
middle, redirects to another host, refused cross-repository mounts.

Test support only. Usage:

    fault_proxy.py UPSTREAM_PORT RULES_JSON

listens on a free loopback port (and a second one, the "other host" that redirects
point to) and prints the first port on stdout once ready. RULES_JSON is a list of rules;
each request is matched against them in order and the first rule that matches, and has
`times` left, applies (then its count goes down); requests no rule takes are forwarded
untouched. A rule:

    {"method": "GET", "path": "REGEX", "action": ACTION, "times": N, ...}

ACTION is one of:
    status        answer `status` (e.g. 429, 503) with an error body, and a Retry-After
                  header when `retry_after` is given; the request is not forwarded
    reset         read the request, then close the connection without an answer
    cut           forward, then send the status, the headers and the full Content-Length
                  but only the first half of the body, then close the connection
    redirect      answer 307 to the other port, path /_signed/<token>; that host refuses
                  requests carrying an Authorization header (as a storage service with
                  signed URLs does) and forwards the others upstream with the credentials
                  the original request had
    refuse-mount  turn a mount request (?mount=&from=) into a plain upload request (202)

Every fault applied is written to stderr as "fault ACTION METHOD PATH", every Range
header seen as "range VALUE PATH", every request the signed host refused as
"refused-authorization PATH", and every request as "request METHOD PATH".
"""
import http.client
import http.server
import json
import re
import secrets
import socket
import sys
import threading
import urllib.parse

UPSTREAM = int(sys.argv[1])
RULES = json.loads(sys.argv[2]) if len(sys.argv) > 2 else []
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}
LOCK = threading.Lock()
SIGNED = {}  # token -> (path, authorization or None)
OTHER_PORT = None


def log(line):
    with LOCK:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def take_rule(method, path):
    with LOCK:
        for rule in RULES:
            if rule.get("method", method) != method:
                continue
            if not re.search(rule.get("path", ""), path):
                continue
            if rule.get("times", 1) <= 0:
                continue
            rule["times"] = rule.get("times", 1) - 1
            return rule
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def upstream(self, method, path, body, headers):
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=120)
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp, data

    def reply(self, resp, data, cut=False):
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            # A HEAD answer keeps the upstream length (the size of what GET would send).
            if k.lower() not in HOP and (self.command == "HEAD" or k.lower() != "content-length"):
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data[: len(data) // 2] if cut else data)
        if cut:
            self.wfile.flush()
            self.close_now()

    def close_now(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def headers_for_upstream(self):
        return {k: v for k, v in self.headers.items() if k.lower() not in HOP}

    def signed(self):
        token = self.path[len("/_signed/"):]
        body = self.read_body()
        entry = SIGNED.get(token)
        if entry is None:
            self.send_error(404)
            return
        if self.headers.get("Authorization"):
            log(f"refused-authorization {entry[0]}")
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = self.headers_for_upstream()
        headers["Host"] = f"127.0.0.1:{self.server.main_port}"
        if entry[1]:
            headers["Authorization"] = entry[1]
        resp, data = self.upstream(self.command, entry[0], body, headers)
        self.reply(resp, data)

    def forward(self):
        if self.path.startswith("/_signed/"):
            return self.signed()
        method, path = self.command, self.path
        log(f"request {method} {path}")
        if self.headers.get("Range"):
            log(f"range {self.headers['Range']} {path}")
        rule = take_rule(method, path)
        body = self.read_body()
        action = rule["action"] if rule else None
        if action:
            log(f"fault {action} {method} {path}")
        if action == "status":
            status = rule["status"]
            payload = json.dumps({"errors": [{"code": "TOOMANYREQUESTS" if status == 429 else "UNAVAILABLE",
                                              "message": f"injected {status}"}]}).encode()
            self.send_response(status)
            if "retry_after" in rule:
                self.send_header("Retry-After", str(rule["retry_after"]))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(payload)
            return
        if action == "reset":
            self.close_now()
            return
        if action == "redirect":
            token = secrets.token_hex(8)
            SIGNED[token] = (path, self.headers.get("Authorization"))
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{OTHER_PORT}/_signed/{token}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if action == "refuse-mount":
            url = urllib.parse.urlsplit(path)
            query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
            rest = [(k, v) for k, v in query if k not in ("mount", "from")]
            path = urllib.parse.urlunsplit(("", "", url.path, urllib.parse.urlencode(rest), ""))
        resp, data = self.upstream(method, path, body, self.headers_for_upstream())
        self.reply(resp, data, cut=(action == "cut"))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client closing a kept-alive connection is no error; anything else is logged
        # under the lock, so that it cannot split another line of the log.
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionResetError, BrokenPipeError)):
            log(f"error {client_address}: {error!r}")


main = Server(("127.0.0.1", 0), Handler)
other = Server(("127.0.0.1", 0), Handler)
main.main_port = other.main_port = main.server_address[1]
OTHER_PORT = other.server_address[1]
threading.Thread(target=other.serve_forever, daemon=True).start()
print(main.server_address[1], flush=True)
main.serve_forever()
