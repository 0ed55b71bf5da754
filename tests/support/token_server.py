#!/usr/bin/python3
"""A bearer-token server for Debian's docker-registry (distribution 2.8 `auth.token`).

Test support only: it is the real token protocol (RS256 JWT with an x5c header that the
registry checks against its rootcertbundle), serving one user. Usage:

    token_server.py DIR USER PASSWORD

writes DIR/cert.pem (the registry's rootcertbundle), listens on a free loopback port,
prints "PORT" on stdout once ready, and serves GET /token?service=..&scope=.. until killed.
Requests with wrong credentials get 401; anonymous requests get a token without access.
Every request is appended to DIR/requests.log (method, path, whether it had credentials).
"""
import base64, datetime, http.server, json, os, sys, time, urllib.parse, uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ISSUER = "ocipipe-test-issuer"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def main():
    out, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocipipe test token signer")])
    now = datetime.datetime.utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with open(os.path.join(out, "cert.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    der = cert.public_bytes(serialization.Encoding.DER)
    log = open(os.path.join(out, "requests.log"), "a", buffering=1)
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            q = urllib.parse.parse_qs(url.query)
            auth = self.headers.get("Authorization")
            log.write(f"GET {self.path} auth={'yes' if auth else 'no'}\n")
            if url.path != "/token":
                self.send_response(404); self.end_headers(); return
            if auth is not None and auth != expected:
                self.send_response(401); self.end_headers(); return
            access = []
            if auth == expected:
                for scope in q.get("scope", []):
                    for one in scope.split(" "):
                        parts = one.split(":")
                        if len(parts) >= 3 and parts[0] == "repository":
                            access.append({"type": "repository", "name": ":".join(parts[1:-1]),
                                           "actions": parts[-1].split(",")})
            t = int(time.time())
            header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
            claims = {"iss": ISSUER, "sub": user if auth else "", "aud": q.get("service", [""])[0],
                      "exp": t + 300, "nbf": t - 10, "iat": t, "jti": uuid.uuid4().hex,
                      "access": access}
            signing_input = (b64url(json.dumps(header).encode()) + "." +
                             b64url(json.dumps(claims).encode())).encode()
            sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
            token = signing_input.decode() + "." + b64url(sig)
            body = json.dumps({"token": token, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
