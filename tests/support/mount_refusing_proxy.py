#!/usr/bin/python3
"""A registry in front of a real one that refuses cross-repository mounts.

Test support only: some registries answer `POST /v2/<repo>/blobs/uploads/?mount=D&from=R`
with 202 (start an upload instead) rather than 201. Debian's registry always mounts, so
this proxy turns every mount request into a plain upload request and forwards everything
else untouched. Usage:

    mount_refusing_proxy.py UPSTREAM_PORT

listens on a free loopback port and prints it on stdout once ready. Every refused mount is
appended to stderr as "refused mount <uri>".
"""
import http.client, http.server, sys, urllib.parse

UPSTREAM = int(sys.argv[1])
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        path = self.path
        url = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        if self.command == "POST" and any(k == "mount" for k, _ in query):
            sys.stderr.write(f"refused mount {path}\n")
            sys.stderr.flush()
            rest = [(k, v) for k, v in query if k not in ("mount", "from")]
            path = urllib.parse.urlunsplit(("", "", url.path, urllib.parse.urlencode(rest), ""))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            # A HEAD answer keeps the upstream length (the size of what GET would send).
            if k.lower() not in HOP and (self.command == "HEAD" or k.lower() != "content-length"):
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
