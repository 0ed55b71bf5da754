#!/usr/bin/env bash
# Starts Debian's docker-registry on a free loopback port with storage under $1.
# Prints the host:port on stdout; the registry's pid is written to $1/pid.
# Used by `make demo` (the Rust tests start their own registries).
set -euo pipefail
dir=$1
mkdir -p "$dir/storage"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: $(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
YML
docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 100); do
  if curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then
    echo "127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "registry did not start; see $dir/log" >&2
exit 1
