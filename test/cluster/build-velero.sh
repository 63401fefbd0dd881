#!/usr/bin/env bash
# Builds Velero's CLI (it holds `velero node-agent server` and `velero install`) from the Go module proxy through
# the wrapper module in velerobin/, into a cache directory outside the work tree next to the Kubernetes binaries.
# The key is Velero's version plus a digest of the wrapper's files, so editing them rebuilds. Does nothing when
# the binary exists. Prints the binary directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

VELERO_VERSION=v1.18.3
wrapper="$here/velerobin"
digest=$(cat "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/main.go" | sha256sum | cut -c1-12)
key="velero-${VELERO_VERSION}-${digest}"
bin="${DUO_VELERO_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dataupload-operator/velero-bin/$key}"

if [[ -x "$bin/velero" ]]; then echo "$bin"; exit 0; fi

command -v go >/dev/null || { echo "build-velero: Go is required (go 1.26+)" >&2; exit 1; }
rm -rf "$bin.partial" && mkdir -p "$bin.partial"
export CGO_ENABLED=0 GOTOOLCHAIN=auto GOFLAGS=-mod=mod
start=$(date +%s)

pkg=github.com/vmware-tanzu/velero/pkg/buildinfo
ldflags="-s -w -X $pkg.Version=$VELERO_VERSION -X $pkg.GitTreeState=clean"
echo "build-velero: building Velero $VELERO_VERSION (a cold build takes a while on 2 cores)" >&2
(cd "$wrapper" && go build -trimpath -ldflags "$ldflags" -o "$bin.partial/velero" .)

"$bin.partial/velero" version --client-only | grep -q "Version: $VELERO_VERSION" \
  || { echo "build-velero: velero reports the wrong version" >&2; exit 1; }
rm -rf "$bin" && mv "$bin.partial" "$bin"
echo "build-velero: built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
