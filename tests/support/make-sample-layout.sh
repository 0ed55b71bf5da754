#!/usr/bin/env bash
# Writes sample images as an OCI layout at $1 with plain shell tools (tar, gzip,
# sha256sum), independent of ocipipe: tags hello:1.0, hello:latest, tools/shell:2.1
# (sharing a base layer with hello) and multi:latest (a two-platform index).
set -euo pipefail
out=$1
mkdir -p "$out/blobs/sha256"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# blob FILE -> prints "sha256:<hex> <size>" and stores FILE in the layout.
blob() {
  local hex size
  hex=$(sha256sum "$1" | cut -c1-64); size=$(stat -c %s "$1")
  cp "$1" "$out/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}

layer() { # layer NAME FILE CONTENT -> gzip tar layer with one file
  mkdir -p "$tmp/$1"; printf '%s\n' "$3" > "$tmp/$1/$2"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp/$1" -cf "$tmp/$1.tar" .
  gzip -n -9 -c "$tmp/$1.tar" > "$tmp/$1.tgz"
  echo "$(blob "$tmp/$1.tgz") sha256:$(sha256sum "$tmp/$1.tar" | cut -c1-64)"
}

image() { # image NAME ARCH LAYER-INFO... -> manifest "digest size"
  local name=$1 arch=$2; shift 2
  local diffs="" layers="" sep=""
  for l in "$@"; do
    set -- $l
    diffs="$diffs$sep\"$3\""; layers="$layers$sep{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$1\",\"size\":$2}"; sep=","
  done
  printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$arch" "$diffs" > "$tmp/$name.config"
  set -- $(blob "$tmp/$name.config")
  printf '{\n  "schemaVersion": 2,\n  "mediaType": "application/vnd.oci.image.manifest.v1+json",\n  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "%s", "size": %s},\n  "layers": [%s]\n}\n' "$1" "$2" "$layers" > "$tmp/$name.manifest"
  blob "$tmp/$name.manifest"
}

base=$(layer base etc-os-release "ID=demo")
hello=$(image hello amd64 "$base" "$(layer hello hello.txt 'Hello from ocipipe')")
shell=$(image shell amd64 "$base" "$(layer shell motd 'a shell image')")
amd=$(image multi-amd64 amd64 "$(layer ma arch amd64)")
arm=$(image multi-arm64 arm64 "$(layer mb arch arm64)")
set -- $amd; a1=$1 a2=$2; set -- $arm
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"arm64","os":"linux"}}]}' "$a1" "$a2" "$1" "$2" > "$tmp/multi.index"
multi=$(blob "$tmp/multi.index")

entry() { set -- $2 $1 $3; printf '{"mediaType":"%s","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}' "$4" "$1" "$2" "$3"; }
M=application/vnd.oci.image.manifest.v1+json I=application/vnd.oci.image.index.v1+json
printf '{"schemaVersion":2,"manifests":[%s,%s,%s,%s]}\n' \
  "$(entry hello:1.0 "$hello" $M)" "$(entry hello:latest "$hello" $M)" \
  "$(entry tools/shell:2.1 "$shell" $M)" "$(entry multi:latest "$multi" $I)" > "$out/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
echo "$out"
