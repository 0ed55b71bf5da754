#!/usr/bin/env bash
# `make bench`: speed and memory of ocipipe against peers measured in the same run, on
# local registries (Debian's docker-registry on loopback). Prints ratios; a ratio below
# 1.0 means ocipipe took less time than the peer. The machine is noisy: each number is
# the median of RUNS runs, and only ratios within one run mean anything.
#
# Peers: skopeo (copy between a registry and an OCI layout), GNU tar + gzip (packing a
# backup directory), and our own directory backup (what a .tgz backup adds to it).
set -euo pipefail
bin=${BIN:-target/release}
support=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-3}
LAYERS=${LAYERS:-4}
LAYER_MB=${LAYER_MB:-64}
work=$(mktemp -d /tmp/ocipipe-bench.XXXXXX)
cleanup() {
  for r in src dst; do [ -f "$work/$r/pid" ] && kill "$(cat "$work/$r/pid")" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

src=$("$support/registry.sh" "$work/src")
dst=$("$support/registry.sh" "$work/dst")

# An image of LAYERS random (incompressible, like real compressed layers) layers.
lay=$work/layout; mkdir -p "$lay/blobs/sha256"
layers=""; sep=""
for i in $(seq "$LAYERS"); do
  head -c $((LAYER_MB * 1024 * 1024)) /dev/urandom | gzip -1 > "$work/l"
  hex=$(sha256sum "$work/l" | cut -c1-64); size=$(stat -c %s "$work/l"); mv "$work/l" "$lay/blobs/sha256/$hex"
  layers="$layers$sep{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$hex\",\"size\":$size}"; sep=","
done
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$work/c"
chex=$(sha256sum "$work/c" | cut -c1-64); csize=$(stat -c %s "$work/c"); mv "$work/c" "$lay/blobs/sha256/$chex"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$chex" "$csize" "$layers" > "$work/m"
mhex=$(sha256sum "$work/m" | cut -c1-64); msize=$(stat -c %s "$work/m"); mv "$work/m" "$lay/blobs/sha256/$mhex"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' "$mhex" "$msize" > "$lay/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$lay/oci-layout"
skopeo copy --quiet --preserve-digests --dest-tls-verify=false "oci:$lay:v1" "docker://$src/bench/img:v1"
ref=$src/bench/img:v1
total_mb=$((LAYERS * LAYER_MB))
echo "image: $LAYERS layers x $LAYER_MB MiB = $total_mb MiB of gzip layers (random content); median of $RUNS runs"

# measure NAME CMD... : runs CMD RUNS times (after $prepare), prints median seconds and max RSS.
declare -A SECS RSS
measure() {
  local name=$1; shift
  local times=() rss=0
  for _ in $(seq "$RUNS"); do
    eval "${prepare:-true}"
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    read -r t m < "$work/time"
    times+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
  done
  SECS[$name]=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  RSS[$name]=$rss
  printf '  %-34s %7.2f s  %6d MiB peak RSS\n' "$name" "${SECS[$name]}" "$((rss / 1024))"
}
ratio() { awk -v a="${SECS[$1]}" -v b="${SECS[$2]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
nocache() { rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb "$HOME/.local/share/containers/cache/blob-info-cache-v1.boltdb"; }

echo; echo "backup (registry -> local)"
prepare='rm -rf "$work/out"; mkdir -p "$work/out"'
measure "ocipipe backup to directory" "$bin/oci-backup" -q -o "$work/out" "$ref"
prepare='rm -rf "$work/sk"'
measure "skopeo copy to oci layout" skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$work/sk:v1"
prepare='rm -f "$work/out.tgz"'
measure "ocipipe backup to .tgz" "$bin/oci-backup" -q -o "$work/out.tgz" "$ref"
prepare='rm -f "$work/gnu.tgz"'
prepare=true
measure "GNU tar czf of the backup dir" tar -C "$work/out" -czf "$work/gnu.tgz" .
measure "ocipipe oci-pack of the backup dir" "$bin/oci-pack" -q "$work/out" -o "$work/pack.tgz"

echo; echo "restore (local -> registry)"
# Each run pushes to a new namespace, so nothing is already there (skopeo's blob cache,
# which would turn uploads into mounts, is removed too).
n=0
prepare='n=$((n + 1)); nocache'
measure "ocipipe restore from directory" bash -c '"$0" -q -i "$1" "$2/r$RANDOM$RANDOM"' "$bin/oci-restore" "$work/out" "$dst"
measure "skopeo copy from oci layout" bash -c 'skopeo copy --quiet --dest-tls-verify=false "oci:$1:v1" "docker://$2/s$RANDOM$RANDOM/bench/img:v1"' _ "$work/out/bench/img" "$dst"
measure "ocipipe restore from .tgz on stdin" bash -c '"$0" -q -i - "$2/t$RANDOM$RANDOM" < "$1"' "$bin/oci-restore" "$work/out.tgz" "$dst"

echo; echo "ratios (ocipipe time / peer time; below 1.00 is faster)"
printf '  %-58s %s\n' "backup to directory vs skopeo copy to oci layout" "$(ratio "ocipipe backup to directory" "skopeo copy to oci layout")"
printf '  %-58s %s\n' "backup to .tgz vs backup to directory (cost of the tgz)" "$(ratio "ocipipe backup to .tgz" "ocipipe backup to directory")"
printf '  %-58s %s\n' "oci-pack vs GNU tar czf" "$(ratio "ocipipe oci-pack of the backup dir" "GNU tar czf of the backup dir")"
printf '  %-58s %s\n' "restore from directory vs skopeo copy from oci layout" "$(ratio "ocipipe restore from directory" "skopeo copy from oci layout")"
printf '  %-58s %s\n' "restore from .tgz on stdin vs restore from directory" "$(ratio "ocipipe restore from .tgz on stdin" "ocipipe restore from directory")"
echo "  peak RSS of restore from .tgz on stdin: $((RSS["ocipipe restore from .tgz on stdin"] / 1024)) MiB (target: under 64 MiB)"
printf '  sizes: .tgz %s MiB, GNU .tgz %s MiB, image %s MiB\n' "$(( $(stat -c %s "$work/out.tgz") / 1048576 ))" "$(( $(stat -c %s "$work/gnu.tgz") / 1048576 ))" "$total_mb"
