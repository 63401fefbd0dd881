#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok from the Go module proxy
# into a cache directory outside the work tree, keyed by version. Does nothing when the binaries exist.
# Prints the binary directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
key="k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-kwok-${KWOK_VERSION}"
bin="${DUO_KUBE_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dataupload-operator/kube-bin/$key}"
wanted=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

complete() { for b in "${wanted[@]}"; do [[ -x "$bin/$b" ]] || return 1; done; }
if complete; then echo "$bin"; exit 0; fi

command -v go >/dev/null || { echo "build-binaries: Go is required (go 1.26+)" >&2; exit 1; }
mkdir -p "$bin.partial"
export CGO_ENABLED=0 GOTOOLCHAIN=auto GOFLAGS=-mod=mod
start=$(date +%s)

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ldflags+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.gitTreeState=clean"
  ldflags+=" -X $p.buildDate=1970-01-01T00:00:00Z"
done

echo "build-binaries: building etcd $ETCD_VERSION" >&2
(cd "$here/etcdbin" && go build -trimpath -ldflags "-s -w" -o "$bin.partial/etcd" go.etcd.io/etcd/server/v3)
echo "build-binaries: building kwok $KWOK_VERSION" >&2
(cd "$here/kwokbin" && go build -trimpath -ldflags "-s -w" -o "$bin.partial/kwok" sigs.k8s.io/kwok/cmd/kwok)
echo "build-binaries: building Kubernetes $K8S_VERSION (a cold build takes a while on 2 cores)" >&2
(cd "$here/k8sbin" && go build -trimpath -tags=notest -ldflags "$ldflags" -o "$bin.partial/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)

"$bin.partial/kube-apiserver" --version | grep -q "Kubernetes $K8S_VERSION" \
  || { echo "build-binaries: kube-apiserver reports the wrong version" >&2; exit 1; }
rm -rf "$bin" && mv "$bin.partial" "$bin"
echo "build-binaries: built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
