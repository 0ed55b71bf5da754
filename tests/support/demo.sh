#!/usr/bin/env bash
# The built-in demo (`make demo`): starts two local registries, seeds them with sample
# images using skopeo (an independent client), backs them up with oci-backup, restores
# the backup under a new namespace with oci-restore, and shows that every tag kept its
# digest.
set -euo pipefail
bin=${BIN:-target/release}
support=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/ocipipe-demo.XXXXXX)
cleanup() {
  for r in src dst; do
    [ -f "$work/$r/pid" ] && kill "$(cat "$work/$r/pid")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Starting two registries (Debian's docker-registry) on free loopback ports"
src=$("$support/registry.sh" "$work/src")
dst=$("$support/registry.sh" "$work/dst")
echo "source: $src   destination: $dst"

step "Seeding sample images into $src with skopeo"
"$support/make-sample-layout.sh" "$work/samples" >/dev/null
for ref in hello:1.0 hello:latest tools/shell:2.1 multi:latest; do
  repo=${ref%%:*}
  skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false \
    "oci:$work/samples:$ref" "docker://$src/demo/$repo:${ref#*:}"
  echo "  $src/demo/$ref"
done

step "oci-backup --output $work/mirror ..."
mkdir -p "$work/mirror"
"$bin/oci-backup" --output "$work/mirror" \
  "$src/demo/hello:1.0" "$src/demo/hello:latest" "$src/demo/tools/shell:2.1" "$src/demo/multi:latest"
(cd "$work/mirror" && find . -name index.json | sort | sed 's/^/  /')

step "oci-restore --input $work/mirror $dst/restored"
"$bin/oci-restore" --input "$work/mirror" "$dst/restored"

step "Comparing digests: source vs restored"
accept='application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json'
digest() { curl -fsI -H "Accept: $accept" "http://$1/v2/$2/manifests/$3" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'; }
status=0
for ref in hello:1.0 hello:latest tools/shell:2.1 multi:latest; do
  repo=${ref%%:*} tag=${ref#*:}
  a=$(digest "$src" "demo/$repo" "$tag")
  b=$(digest "$dst" "restored/demo/$repo" "$tag")
  if [ -n "$a" ] && [ "$a" = "$b" ]; then mark=same; else mark=DIFFERENT; status=1; fi
  printf '  %-22s %s  %s\n' "$ref" "$a" "$mark"
done
[ $status = 0 ] && printf '\nEvery tag restored byte for byte.\n'
exit $status
