# shellcheck shell=bash disable=SC2154
# Build half of kube-cluster.sh: sourced, not run. Builds every binary the
# cluster needs from the Go module proxy into version-keyed folders under
# $KUBE_CACHE, and the three images the cluster needs for itself (pause,
# CoreDNS, local-path) as `docker save` tarballs. Each piece is built only when
# its folder lacks it, so a warm call costs a few `test -x`.
#
# The caller sets the *_version variables, KUBE_CACHE, KUBE_SRC (this folder)
# and holds the kube-cluster lock.

kube_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
cni_plugins=(main/bridge ipam/host-local main/loopback meta/portmap)

k8s_dir="$KUBE_CACHE/kubernetes-$k8s_version"
etcd_dir="$KUBE_CACHE/etcd-$etcd_version"
cni_dir="$KUBE_CACHE/cni-plugins-$cni_version"
coredns_dir="$KUBE_CACHE/coredns-$coredns_version"
local_path_dir="$KUBE_CACHE/local-path-provisioner-$local_path_version"
crictl_dir="$KUBE_CACHE/crictl-$crictl_version"
# The helpers (pause, mkimage) and the images made from them are keyed by a
# digest of their sources, so an edit rebuilds them.
helpers_key="$(cat "$KUBE_SRC/go.mod" "$KUBE_SRC/pause/main.go" "$KUBE_SRC/mkimage/main.go" | sha256sum | cut -c1-12)"
helpers_dir="$KUBE_CACHE/helpers-$helpers_key"
images_dir="$KUBE_CACHE/images"

# The images the cluster runs for itself. Fixed tags, never :latest (a
# :latest tag makes the kubelet pull, and pulls fail here).
pause_image="orchestrator-testenv/kube-pause:1"
coredns_image="orchestrator-testenv/kube-coredns:$coredns_version"
local_path_image="orchestrator-testenv/kube-local-path:$local_path_version"
pause_tar="$images_dir/kube-pause-$helpers_key.tar"
coredns_tar="$images_dir/kube-coredns-$coredns_version-$helpers_key.tar"
local_path_tar="$images_dir/kube-local-path-$local_path_version-$helpers_key.tar"

# kube_built: true when every binary and image tarball is in the cache.
kube_built() {
	local b p
	for b in "${kube_bins[@]}"; do [ -x "$k8s_dir/bin/$b" ] || return 1; done
	for p in "${cni_plugins[@]}"; do [ -x "$cni_dir/${p#*/}" ] || return 1; done
	[ -x "$etcd_dir/etcd" ] && [ -x "$coredns_dir/coredns" ] &&
		[ -x "$local_path_dir/local-path-provisioner" ] && [ -s "$local_path_dir/local-path-storage.yaml" ] &&
		[ -x "$crictl_dir/crictl" ] &&
		[ -s "$pause_tar" ] && [ -s "$coredns_tar" ] && [ -s "$local_path_tar" ]
}

# gorun LOGNAME DIR CMD...: run a go command in DIR with the caller's Go
# settings neutralised (a go.work or GOFLAGS=-mod=vendor meant for the
# orchestrator would break these throwaway modules). The output, hundreds of
# "go: downloading" lines, goes to a log whose tail is shown on failure.
gorun() {
	local name=$1 dir=$2 log="$KUBE_CACHE/logs/build-$1.log"
	shift 2
	mkdir -p "$KUBE_CACHE/logs"
	if ! (cd "$dir" && GOWORK=off GOFLAGS='' "$@") >"$log" 2>&1; then
		say "$name failed; last lines of $log:"
		tail -n 25 "$log" >&2
		die "building $name failed"
	fi
}

# install_bins DESTDIR BIN...: move the freshly built DESTDIR/.new/BIN into
# place. Building into .new and renaming means an interrupted build never
# leaves a half-written binary that the `test -x` checks would take as built.
install_bins() {
	local dest=$1 b
	shift
	for b in "$@"; do
		[ -x "$dest/.new/$b" ] || die "the build finished but $dest/.new/$b is missing"
		mv -f "$dest/.new/$b" "$dest/$b"
	done
	rm -rf "$dest/.new"
}

# build_kubernetes: kube-apiserver, controller-manager, scheduler, kubelet,
# kube-proxy and kubectl from k8s.io/kubernetes in one throwaway module.
# k8s.io/kubernetes requires its staging modules (k8s.io/api, client-go, ...)
# as v0.0.0 replaced by ./staging/src/...: a module that requires it must
# replace each by its published v0.X.Y. All missing binaries build in one `go
# build`, which shares the compiled packages and uses both cores throughout.
build_kubernetes() {
	local missing=() b mod pkgs=() t0=$SECONDS
	for b in "${kube_bins[@]}"; do [ -x "$k8s_dir/bin/$b" ] || missing+=("$b"); done
	[ ${#missing[@]} -gt 0 ] || return 0
	mkdir -p "$k8s_dir/bin"
	if [ ! -f "$k8s_dir/.tidy-done" ]; then
		say "preparing the k8s.io/kubernetes $k8s_version module in $k8s_dir (downloads its dependencies once)"
		printf 'module orchestrator-testenv/kubernetes\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n' "$k8s_version" >"$k8s_dir/go.mod"
		gorun k8s-download "$k8s_dir" go mod download -json "k8s.io/kubernetes@$k8s_version"
		mod="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' "$KUBE_CACHE/logs/build-k8s-download.log" | head -n1)"
		[ -f "$mod/go.mod" ] || die "cannot find k8s.io/kubernetes@$k8s_version in the module cache (see $KUBE_CACHE/logs/build-k8s-download.log)"
		# "k8s.io/X => ./staging/src/k8s.io/X" becomes "replace k8s.io/X => k8s.io/X v0.37.2".
		sed -n 's|^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*$|\1|p' "$mod/go.mod" |
			while read -r b; do printf 'replace %s => %s %s\n' "$b" "$b" "$staging_version"; done >>"$k8s_dir/go.mod"
		grep -q '^replace k8s.io/client-go ' "$k8s_dir/go.mod" || die "no staging replaces found in $mod/go.mod"
		# Blank imports make `go mod tidy` record what every binary needs.
		cat >"$k8s_dir/main.go" <<-'EOF'
			// Throwaway module made by hack/testenv/kube-cluster.sh: it only
			// pins the dependencies of the cluster binaries built from it.
			package main

			import (
				_ "k8s.io/kubectl/pkg/cmd"
				_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
				_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
				_ "k8s.io/kubernetes/cmd/kube-proxy/app"
				_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
				_ "k8s.io/kubernetes/cmd/kubelet/app"
			)

			func main() {}
		EOF
		gorun k8s-tidy "$k8s_dir" go mod tidy
		touch "$k8s_dir/.tidy-done"
		say "module ready in $((SECONDS - t0)) s"
	fi
	for b in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
	say "building ${missing[*]} $k8s_version (cold: about 6-8 min on 2 cores; log: $KUBE_CACHE/logs/build-kubernetes.log)"
	local minor=${k8s_version#v1.}
	minor=${minor%%.*}
	# Without the version the binaries say v0.0.0-master+$Format:%H$, which
	# kubectl and anything else that parses the server version rejects.
	local v=k8s.io/component-base/version
	rm -rf "$k8s_dir/bin/.new"
	mkdir -p "$k8s_dir/bin/.new"
	gorun kubernetes "$k8s_dir" go build -ldflags "-s -w -X $v.gitVersion=$k8s_version -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
		-o "$k8s_dir/bin/.new/" "${pkgs[@]}"
	install_bins "$k8s_dir/bin" "${missing[@]}"
	say "built ${missing[*]} in $((SECONDS - t0)) s"
}

# build_etcd: etcd's server module, run through etcdmain as the etcd binary does.
build_etcd() {
	[ -x "$etcd_dir/etcd" ] && return 0
	local t0=$SECONDS
	say "building etcd $etcd_version"
	mkdir -p "$etcd_dir"
	printf 'module orchestrator-testenv/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$etcd_version" >"$etcd_dir/go.mod"
	printf '%s\n' '// Throwaway module made by hack/testenv/kube-cluster.sh.' 'package main' '' \
		'import (' '	"os"' '' '	"go.etcd.io/etcd/server/v3/etcdmain"' ')' '' \
		'func main() { etcdmain.Main(os.Args) }' >"$etcd_dir/main.go"
	gorun etcd-tidy "$etcd_dir" go mod tidy
	rm -rf "$etcd_dir/.new"
	gorun etcd "$etcd_dir" go build -ldflags '-s -w' -o "$etcd_dir/.new/etcd" .
	install_bins "$etcd_dir" etcd
	say "built etcd $etcd_version in $((SECONDS - t0)) s"
}

# goinstall NAME DIR PKG@VER...: `go install` with each module's own go.mod
# (exactly the dependencies its release was tested with), into DIR.
goinstall() {
	local name=$1 dir=$2 t0=$SECONDS p bins=()
	shift 2
	for p in "$@"; do
		p=${p%@*}
		bins+=("${p##*/}")
	done
	say "building $name"
	rm -rf "$dir/.new"
	mkdir -p "$dir/.new"
	# CGO_ENABLED=0: CoreDNS and local-path run FROM scratch, so they must be static.
	gorun "$name" "$dir" env GOBIN="$dir/.new" CGO_ENABLED=0 go install -ldflags '-s -w' "$@"
	install_bins "$dir" "${bins[@]}"
	say "built $name in $((SECONDS - t0)) s"
}

build_tools() {
	local p pkgs=() stale=0
	for p in "${cni_plugins[@]}"; do
		[ -x "$cni_dir/${p#*/}" ] || stale=1
		pkgs+=("github.com/containernetworking/plugins/plugins/$p@$cni_version")
	done
	[ "$stale" = 0 ] || goinstall "cni-plugins-$cni_version" "$cni_dir" "${pkgs[@]}"
	[ -x "$coredns_dir/coredns" ] ||
		goinstall "coredns-$coredns_version" "$coredns_dir" "github.com/coredns/coredns@$coredns_version"
	[ -x "$local_path_dir/local-path-provisioner" ] ||
		goinstall "local-path-provisioner-$local_path_version" "$local_path_dir" \
			"github.com/rancher/local-path-provisioner@$local_path_version"
	if [ ! -s "$local_path_dir/local-path-storage.yaml" ]; then
		# The release's own deploy manifest, kept beside the binary so `up`
		# needs neither go nor the module cache.
		local mod
		gorun local-path-manifest "$local_path_dir" go mod download -json "github.com/rancher/local-path-provisioner@$local_path_version"
		mod="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p' "$KUBE_CACHE/logs/build-local-path-manifest.log" | head -n1)"
		[ -s "$mod/deploy/local-path-storage.yaml" ] || die "no deploy/local-path-storage.yaml in $mod"
		cp "$mod/deploy/local-path-storage.yaml" "$local_path_dir/local-path-storage.yaml.tmp"
		mv "$local_path_dir/local-path-storage.yaml.tmp" "$local_path_dir/local-path-storage.yaml"
	fi
	# crictl removes the pod sandboxes at `down`, which runs each one's CNI DEL
	# (IP release, iptables masquerade chains) the way the kubelet would.
	# The github.com/kubernetes-sigs/cri-tools path is refused by the proxy.
	[ -x "$crictl_dir/crictl" ] ||
		goinstall "crictl-$crictl_version" "$crictl_dir" "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_version"
	if [ ! -x "$helpers_dir/pause" ] || [ ! -x "$helpers_dir/mkimage" ]; then
		rm -rf "$helpers_dir/.new"
		gorun helpers "$KUBE_SRC" env CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$helpers_dir/.new/" ./pause ./mkimage
		install_bins "$helpers_dir" pause mkimage
	fi
}

# kube_busybox prints the path of a static busybox from Debian's
# busybox-static, unpacked into the cache (shared with images.sh) rather than
# installed, because installing it would replace a host's dynamic busybox.
kube_busybox() {
	local bin tmp
	bin="$(find "$TESTENV_CACHE_DIR/busybox-static" -path '*/bin/busybox' -type f 2>/dev/null | head -n1)"
	if [ -n "$bin" ]; then
		echo "$bin"
		return
	fi
	say "fetching Debian's busybox-static"
	tmp="$(mktemp -d "$KUBE_CACHE/busybox.XXXXXX")"
	if ! (cd "$tmp" && apt-get download -q busybox-static >&2); then
		testenv_root_init "refreshing apt lists"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || say "apt-get update reported errors; trying anyway"
		(cd "$tmp" && apt-get download -q busybox-static >&2) || die "apt-get download busybox-static failed"
	fi
	dpkg-deb -x "$tmp"/busybox-static_*.deb "$tmp/x"
	local dest
	dest="$TESTENV_CACHE_DIR/busybox-static/$(basename "$tmp"/busybox-static_*.deb .deb)"
	mkdir -p "$dest/bin"
	cp "$tmp/x/bin/busybox" "$dest/bin/busybox.tmp"
	mv "$dest/bin/busybox.tmp" "$dest/bin/busybox"
	rm -rf "$tmp"
	echo "$dest/bin/busybox"
}

# build_images: the tarballs of the cluster's own images, made by mkimage
# from a directory (no Docker engine needed).
build_images() {
	[ -s "$pause_tar" ] && [ -s "$coredns_tar" ] && [ -s "$local_path_tar" ] && return 0
	mkdir -p "$images_dir"
	local root
	root="$(mktemp -d "$KUBE_CACHE/rootfs.XXXXXX")"
	if [ ! -s "$pause_tar" ]; then
		mkdir -p "$root/pause"
		cp "$helpers_dir/pause" "$root/pause/pause"
		"$helpers_dir/mkimage" -ref "$pause_image" -o "$pause_tar" -entrypoint /pause "$root/pause" || die "mkimage $pause_image failed"
	fi
	if [ ! -s "$coredns_tar" ]; then
		mkdir -p "$root/coredns/etc" "$root/coredns/tmp"
		chmod 1777 "$root/coredns/tmp"
		cp "$coredns_dir/coredns" "$root/coredns/coredns"
		"$helpers_dir/mkimage" -ref "$coredns_image" -o "$coredns_tar" -entrypoint /coredns "$root/coredns" ||
			die "mkimage $coredns_image failed"
	fi
	if [ ! -s "$local_path_tar" ]; then
		# The provisioner's manifest runs `local-path-provisioner` through PATH,
		# and its helper pods (mkdir/rm of each volume) need `sh`: this one
		# image serves both, with busybox for the shell.
		local bb applet r="$root/local-path"
		bb="$(kube_busybox)"
		mkdir -p "$r/bin" "$r/tmp" "$r/etc"
		chmod 1777 "$r/tmp"
		cp "$local_path_dir/local-path-provisioner" "$r/bin/local-path-provisioner"
		cp "$bb" "$r/bin/busybox"
		for applet in $("$r/bin/busybox" --list); do
			[ "$applet" = busybox ] || ln -sf busybox "$r/bin/$applet"
		done
		echo 'root:x:0:0:root:/:/bin/sh' >"$r/etc/passwd"
		echo 'root:x:0:' >"$r/etc/group"
		"$helpers_dir/mkimage" -ref "$local_path_image" -o "$local_path_tar" "$r" || die "mkimage $local_path_image failed"
	fi
	rm -rf "$root"
}

# kube_build: everything, in the order that shares the most of the Go build
# cache (the kubernetes binaries first: they compile client-go & co.).
kube_build() {
	local t0=$SECONDS
	kube_built && return 0
	command -v go >/dev/null 2>&1 || die "go is not on PATH; it builds the cluster's binaries"
	build_kubernetes
	build_etcd
	build_tools
	build_images
	say "binaries and images ready in $((SECONDS - t0)) s ($KUBE_CACHE)"
}
