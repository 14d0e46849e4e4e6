#!/usr/bin/env bash
# Builds the Kubernetes v1.20.2 binaries the kube/node tests run (no image or binary can be pulled here):
#   kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy  <- Debian bookworm's
#       `kubernetes` source package (full upstream v1.20.2 tree) with bookworm's Go 1.19,
#   etcd                                                                         <- bookworm's etcd-server .deb,
#   pause                                                                        <- build/pause/linux/pause.c,
# into $CACHE/kube-v1.20.2/bin (CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/btc-forecast).
#
# Nothing is installed system-wide: a private apt configuration (own lists, own archive folder, a
# bookworm deb + deb-src source list) downloads the source package and the .debs, which are unpacked
# under $CACHE/kube-v1.20.2/work. The build is upstream's GOPATH mode (GO111MODULE=off, CGO_ENABLED=0,
# GOPROXY=off) with two fixes (see ../shared/STACK.md): the missing pkg/generated/openapi is generated
# with openapi-gen, and the vendored modern-go/reflect2 1.0.1 (crashes with Go >= 1.18) is replaced
# by Debian's 1.0.2. Idempotent: when the binaries are present and report the right versions the
# script exits in seconds. The Go build cache stays under $CACHE so a rebuild takes about a minute.
#
# Usage: scripts/kube/build.sh [--force]     (--force: rebuild the binaries even if present)
# Env:   KUBE_BUILD_JOBS (go build -p, default 2, at most 2 -- the machine is shared)
#        KUBE_BUILD_TAGS (go build tags, default "providerless": no in-tree cloud providers)
#        KUBE_APT_MIRROR (Debian mirror, default: the host's bookworm mirror or deb.debian.org)
# Needs: apt-get, dpkg-deb, dpkg-source (dpkg-dev), gcc with static libc (libc6-dev), flock, xz.
set -euo pipefail

KUBE_VERSION=v1.20.2
KUBE_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
KUBE_SRC_MATCH='really1.20.2'
ETCD_VERSION=3.4.23
PAUSE_VERSION=v3.4-btcf
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/btc-forecast
ROOT=$CACHE/kube-$KUBE_VERSION
BIN=$ROOT/bin
WORK=$ROOT/work
APT_DIR=$WORK/apt
DL=$WORK/dl
TOOLCHAIN=$WORK/toolchain
GOPATH_DIR=$WORK/gopath
SRC=$WORK/src
GO_CACHE=$ROOT/go-cache
JOBS=${KUBE_BUILD_JOBS:-2}
TAGS=${KUBE_BUILD_TAGS-providerless}
FORCE=false
[[ ${1:-} == --force ]] && FORCE=true
((JOBS > 2)) && JOBS=2

T0=$SECONDS
log() { printf '[kube-build %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Prints the version a binary reports, or nothing.
binary_version() {
    local name=$1 path=$BIN/$1
    [[ -x $path ]] || return 0
    case $name in
        etcd) "$path" --version 2>/dev/null | sed -n 's/^etcd Version: //p' ;;
        pause) "$path" -v 2>/dev/null | sed -n 's/^pause.c //p' ;;
        *) "$path" --version 2>/dev/null | sed -n 's/^Kubernetes //p' ;;
    esac
}

# True when every binary is present and reports the expected version.
binaries_ok() {
    local c
    for c in "${COMPONENTS[@]}"; do [[ $(binary_version "$c") == "$KUBE_VERSION" ]] || return 1; done
    [[ $(binary_version etcd) == "$ETCD_VERSION" ]] || return 1
    [[ $(binary_version pause) == "$PAUSE_VERSION" ]] || return 1
}

report() {
    local c
    for c in "${COMPONENTS[@]}" etcd pause; do
        printf '  %-24s %-12s %s\n' "$c" "$(binary_version "$c")" "$(du -h "$BIN/$c" | cut -f1)" >&2
    done
}

mkdir -p "$ROOT"
if ! $FORCE && binaries_ok; then
    log "all binaries present in $BIN:"; report; exit 0
fi

# One build at a time (several test sessions may call this at once).
exec 9>"$ROOT/.build.lock"
log "waiting for the build lock"; flock 9
if ! $FORCE && binaries_ok; then
    log "built by another run meanwhile:"; report; exit 0
fi

for tool in apt-get dpkg-deb dpkg-source gcc xz; do
    command -v "$tool" >/dev/null || die "missing $tool (Debian packages: apt dpkg-dev gcc libc6-dev xz-utils)"
done
mkdir -p "$BIN" "$APT_DIR"/{lists/partial,archives/partial,etc/sources.list.d,etc/preferences.d} "$DL" "$GO_CACHE"

# --- 1. Private apt configuration: bookworm, deb + deb-src, own state; /etc/apt is left alone.
mirror=${KUBE_APT_MIRROR:-}
if [[ -z $mirror ]]; then
    mirror=$(grep -hsE '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}' || true)
    [[ -n $mirror ]] || mirror=$(grep -hsE '^deb +[^ ]+/debian/? +bookworm ' /etc/apt/sources.list | head -n1 \
        | awk '{print $2}' || true)
    [[ -n $mirror ]] || mirror=http://deb.debian.org/debian
fi
cat >"$APT_DIR/etc/bookworm.sources" <<EOF
Types: deb deb-src
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
APT=(apt-get -q -o APT::Sandbox::User=root -o Debug::NoLocking=1
    -o Dir::Etc::SourceList="$APT_DIR/etc/bookworm.sources" -o Dir::Etc::SourceParts="$APT_DIR/etc/sources.list.d"
    -o Dir::Etc::Preferences="$APT_DIR/etc/preferences" -o Dir::Etc::PreferencesParts="$APT_DIR/etc/preferences.d"
    -o Dir::State::Lists="$APT_DIR/lists" -o Dir::Cache="$APT_DIR" -o Dir::Cache::archives="$APT_DIR/archives"
    -o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache="")

have_downloads() {
    compgen -G "$DL/kubernetes_*${KUBE_SRC_MATCH}*.dsc" >/dev/null &&
        compgen -G "$DL/golang-1.19-go_*.deb" >/dev/null && compgen -G "$DL/golang-1.19-src_*.deb" >/dev/null &&
        compgen -G "$DL/etcd-server_${ETCD_VERSION}*.deb" >/dev/null &&
        compgen -G "$DL/golang-github-modern-go-reflect2-dev_1.0.2*.deb" >/dev/null
}
if ! have_downloads; then
    log "apt update (private configuration, mirror $mirror)"
    "${APT[@]}" update >"$WORK/apt-update.log" 2>&1 || { cat "$WORK/apt-update.log" >&2; die "apt-get update failed"; }
    log "downloading the kubernetes source package and the Go/etcd .debs"
    (cd "$DL" && "${APT[@]}" source --download-only kubernetes &&
        "${APT[@]}" download golang-1.19-go golang-1.19-src etcd-server golang-github-modern-go-reflect2-dev) \
        >"$WORK/apt-download.log" 2>&1 || { cat "$WORK/apt-download.log" >&2; die "download failed"; }
    have_downloads || die "bookworm no longer has the expected packages (see $WORK/apt-download.log)"
fi

# --- 2. Toolchain (Go 1.19 from bookworm), etcd and reflect2 1.0.2 unpacked under work/.
if [[ ! -x $TOOLCHAIN/usr/lib/go-1.19/bin/go ]]; then
    log "unpacking Go 1.19"
    rm -rf "$TOOLCHAIN" && mkdir -p "$TOOLCHAIN"
    for deb in "$DL"/golang-1.19-go_*.deb "$DL"/golang-1.19-src_*.deb; do dpkg-deb -x "$deb" "$TOOLCHAIN"; done
fi
export GOROOT=$TOOLCHAIN/usr/lib/go-1.19
export PATH=$GOROOT/bin:$PATH
export GOPATH=$GOPATH_DIR GOCACHE=$GO_CACHE GO111MODULE=off CGO_ENABLED=0 GOPROXY=off GOFLAGS='' GOENV=off
GOARCH=$(dpkg --print-architecture)
export GOOS=linux GOARCH GOTOOLCHAIN=local GONOSUMDB='' GOPRIVATE='' GOSUMDB=off
unset GOBIN GOEXPERIMENT
log "toolchain: $(go version)"

if [[ $(binary_version etcd) != "$ETCD_VERSION" ]]; then
    log "etcd $ETCD_VERSION from the etcd-server .deb"
    rm -rf "$WORK/etcd" && mkdir -p "$WORK/etcd"
    dpkg-deb -x "$(compgen -G "$DL/etcd-server_${ETCD_VERSION}*.deb" | head -n1)" "$WORK/etcd"
    install -m 0755 "$WORK/etcd/usr/bin/etcd" "$BIN/etcd.tmp" && mv -f "$BIN/etcd.tmp" "$BIN/etcd"
fi

# --- 3. Source tree, prepared once: unpack (with Debian's patches), swap reflect2, generate openapi.
PREP_STAMP=$SRC/.btcf-prepared
PREP_ID="$(basename "$(compgen -G "$DL/kubernetes_*${KUBE_SRC_MATCH}*.dsc" | head -n1)") openapi+reflect2 v1"
KTREE=$GOPATH_DIR/src/k8s.io/kubernetes
if [[ ! -f $PREP_STAMP || $(cat "$PREP_STAMP") != "$PREP_ID" ]]; then
    t=$SECONDS
    log "unpacking the source package"
    rm -rf "$SRC" "$GOPATH_DIR"
    dpkg-source --no-check -x "$(compgen -G "$DL/kubernetes_*${KUBE_SRC_MATCH}*.dsc" | head -n1)" "$SRC" \
        >"$WORK/dpkg-source.log" 2>&1 || { cat "$WORK/dpkg-source.log" >&2; die "dpkg-source failed"; }
    rm -f "$WORK"/kubernetes_*.orig.tar.* "$WORK"/kubernetes_*.debian.tar.*  # copies dpkg-source left
    mkdir -p "$(dirname "$KTREE")" && ln -s "$SRC" "$KTREE"

    log "replacing vendored modern-go/reflect2 with Debian's 1.0.2"
    rm -rf "$WORK/reflect2" && mkdir -p "$WORK/reflect2"
    dpkg-deb -x "$(compgen -G "$DL/golang-github-modern-go-reflect2-dev_1.0.2*.deb" | head -n1)" "$WORK/reflect2"
    rm -rf "$SRC/vendor/github.com/modern-go/reflect2"
    cp -r "$WORK/reflect2/usr/share/gocode/src/github.com/modern-go/reflect2" "$SRC/vendor/github.com/modern-go/"
    rm -f "$SRC/vendor/github.com/modern-go/reflect2/go.mod"

    log "building openapi-gen"
    cd "$KTREE"
    go build -p "$JOBS" -o "$WORK/openapi-gen" k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen
    # Upstream's Makefile.generated_files selection (KUBE target): the folders of every Go file with a
    # `// +k8s:` tag that mentions +k8s:openapi-gen=, staging named as vendor/, minus code-generator
    # and sample-apiserver.
    dirs=$(find -H . -not \( \( -path './_*' -o -path './.*' -o -path ./vendor -o -path ./debian \) -prune \) \
        -type f -name '*.go' -print0 | xargs -0 grep -l -E '^// *\+k8s:' | xargs grep -l '+k8s:openapi-gen=' |
        sed 's|^\./staging/src|vendor|; s|^\./||; s|/[^/]*$||' |
        grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' | LC_ALL=C sort -u)
    log "generating pkg/generated/openapi over $(wc -l <<<"$dirs") packages"
    "$WORK/openapi-gen" --logtostderr \
        -i "$(sed 's|^|k8s.io/kubernetes/|' <<<"$dirs" | paste -sd,)" \
        -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
        -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
        -r "$WORK/openapi-violations.report" --output-base "$GOPATH_DIR/src" >"$WORK/openapi-gen.log" 2>&1 ||
        { tail -n 50 "$WORK/openapi-gen.log" >&2; die "openapi-gen failed"; }
    [[ -s $SRC/pkg/generated/openapi/zz_generated.openapi.go ]] || die "openapi-gen wrote nothing"
    if ! diff -q "$WORK/openapi-violations.report" api/api-rules/violation_exceptions.list >/dev/null; then
        log "note: API rule report differs from upstream's known list (see $WORK/openapi-violations.report)"
    fi
    echo "$PREP_ID" >"$PREP_STAMP"
    log "source prepared in $((SECONDS - t)) s"
fi

# --- 4. The Kubernetes binaries (upstream's ldflags: stripped, version stamped).
cd "$KTREE"
ldflags="-s -w"
for kv in gitVersion="$KUBE_VERSION" gitMajor=1 gitMinor=20 gitCommit="$KUBE_GIT_COMMIT" gitTreeState=clean \
    buildDate="$(date -u -d @"$(stat -c %Y "$PREP_STAMP")" +%Y-%m-%dT%H:%M:%SZ)"; do
    for pkg in k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version \
        k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
        ldflags+=" -X '$pkg.${kv%%=*}=${kv#*=}'"
    done
done
for c in "${COMPONENTS[@]}"; do
    if ! $FORCE && [[ $(binary_version "$c") == "$KUBE_VERSION" ]]; then continue; fi
    t=$SECONDS
    log "go build $c (-p $JOBS, tags '${TAGS}')"
    go build -p "$JOBS" -tags "$TAGS" -ldflags "$ldflags" -o "$BIN/.$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv -f "$BIN/.$c.tmp" "$BIN/$c"
    log "$c built in $((SECONDS - t)) s"
done

# --- 5. The pod sandbox's pause binary, static.
if $FORCE || [[ $(binary_version pause) != "$PAUSE_VERSION" ]]; then
    log "gcc -static pause"
    gcc -Os -Wall -Werror -static -DVERSION="$PAUSE_VERSION" -o "$BIN/.pause.tmp" "$SRC/build/pause/linux/pause.c"
    strip "$BIN/.pause.tmp" && mv -f "$BIN/.pause.tmp" "$BIN/pause"
fi

binaries_ok || { report; die "a binary does not report the expected version"; }
log "done in $((SECONDS - T0)) s; binaries in $BIN:"
report
