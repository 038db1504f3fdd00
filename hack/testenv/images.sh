#!/usr/bin/env bash
# Builds the local stand-in images the end-to-end tests run instead of the
# platform's upstream images (no registry is reachable, so nothing can be
# pulled). Each image is built only when missing from the engine or built from
# other inputs than the ones in this folder, so repeated runs cost a few
# `docker image inspect` calls.
#
# On success, stdout carries one NAME=IMAGE line per image (for `eval`);
# progress goes to stderr.
#
# Environment:
#   XDG_CACHE_HOME                       cache root (default $HOME/.cache)
#   ORCHESTRATOR_TESTENV_DEBIAN_MIRROR   debootstrap mirror (default http://deb.debian.org/debian)
set -euo pipefail

TESTENV_NAME=images
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/testenv/lib.sh
. "$here/lib.sh"

# Fixed tags, never :latest: a :latest tag makes compose and kubelet try a pull,
# which fails here. Bump a tag when a change must not reuse old containers.
web_image=orchestrator-testenv/web:1
pg_image=orchestrator-testenv/postgres:15-1
# The bare debootstrap import, kept as its own image so an entrypoint change
# rebuilds one small layer instead of re-importing ~430 MB.
pg_suite=bookworm
pg_packages=postgresql-15
pg_rootfs_key="${pg_suite}-minbase-${pg_packages}-v1"
pg_rootfs_image="orchestrator-testenv/postgres-rootfs:${pg_rootfs_key}"
pg_rootfs_tar="$TESTENV_CACHE_DIR/postgres-rootfs-${pg_rootfs_key}.tar"
mirror="${ORCHESTRATOR_TESTENV_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# The label records a digest of the files an image was built from, so an edit
# to the stand-in or the entrypoint rebuilds the image under the same tag
# rather than leaving a stale one that the tests would silently use.
inputs_label=io.github.aipairpro.orchestrator.testenv.inputs
# Bump when the build recipe below changes in a way the input files do not show.
recipe_version=1

# digest HEADER FILE...: a short digest of HEADER followed by the FILEs.
digest() {
	{
		printf '%s\n' "$1"
		shift
		cat "$@"
	} | sha256sum | cut -c1-16
}
web_inputs="$(digest "recipe $recipe_version" "$here/webstandin/go.mod" "$here/webstandin/main.go")"
pg_inputs="$(digest "recipe $recipe_version rootfs $pg_rootfs_key" "$here/postgres/docker-entrypoint.sh")"

# image_current IMAGE DIGEST: true when IMAGE exists and was built from DIGEST.
image_current() {
	local got
	got="$(docker image inspect --format "{{ index .Config.Labels \"$inputs_label\" }}" "$1" 2>/dev/null)" || return 1
	[ "$got" = "$2" ]
}

# docker_build IMAGE DIGEST CONTEXT: the legacy builder (no buildx plugin on
# these machines, and FROM scratch or a local base needs no registry). The
# image it replaces under the same tag is removed, or every edit would leave a
# dangling copy (a 400 MB one for PostgreSQL); that fails harmlessly while a
# container still uses it.
docker_build() {
	local old new
	old="$(docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true)"
	DOCKER_BUILDKIT=0 docker build -q --label "$inputs_label=$2" -t "$1" "$3" >/dev/null ||
		die "docker build of $1 failed"
	new="$(docker image inspect --format '{{.Id}}' "$1")"
	if [ -n "$old" ] && [ "$old" != "$new" ]; then
		docker image rm "$old" >/dev/null 2>&1 || true
	fi
}

emit() {
	printf 'ORCHESTRATOR_TESTENV_WEB_IMAGE=%s\n' "$web_image"
	printf 'ORCHESTRATOR_TESTENV_POSTGRES_IMAGE=%s\n' "$pg_image"
}

# Fast path, without the lock or docker-engine.sh: the common case on every
# run after the first. One docker call, since each CLI start costs ~0.1 s idle
# and far more while tests load the CPUs; an answer also proves the engine is up.
if [ "$(docker image inspect --format "{{ index .Config.Labels \"$inputs_label\" }}" \
	"$web_image" "$pg_image" 2>/dev/null | tr '\n' ' ')" = "$web_inputs $pg_inputs " ]; then
	emit
	exit 0
fi

"$here/docker-engine.sh"

# A cold PostgreSQL rootfs takes about a minute; concurrent callers wait for it.
with_lock images 1800

work=""
cleanup() {
	# The script's exit status must stay the one it exited with, whatever
	# happens here, so nothing in cleanup may trip `set -e`.
	local rc=$? m
	if [ -n "$work" ] && [ -d "$work" ]; then
		# debootstrap mounts /proc and /sys inside its target; a failed run can
		# leave them mounted, and rm -rf must never walk into the host's.
		awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
			while read -r m; do as_root umount -l "$m" 2>/dev/null || true; done || true
		as_root rm -rf --one-file-system "$work" || say "could not remove $work"
	fi
	exit "$rc"
}
trap cleanup EXIT
TESTENV_ROOT=()
work="$(mktemp -d "$TESTENV_CACHE_DIR/build.XXXXXX")"

# busybox_binary prints the path of a static busybox from Debian's
# busybox-static, unpacked into the cache rather than installed, because
# installing it would replace a host's dynamic busybox package.
busybox_binary() {
	local bin
	bin="$(find "$TESTENV_CACHE_DIR/busybox-static" -path '*/bin/busybox' -type f 2>/dev/null | head -n1)"
	if [ -n "$bin" ]; then
		echo "$bin"
		return
	fi
	say "fetching Debian's busybox-static"
	mkdir -p "$work/deb"
	if ! (cd "$work/deb" && apt-get download -q busybox-static >&2); then
		testenv_root_init "refreshing apt lists"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || say "apt-get update reported errors; trying anyway"
		(cd "$work/deb" && apt-get download -q busybox-static >&2) || die "apt-get download busybox-static failed"
	fi
	dpkg-deb -x "$work"/deb/busybox-static_*.deb "$work/deb/x"
	local dest
	dest="$TESTENV_CACHE_DIR/busybox-static/$(basename "$work"/deb/busybox-static_*.deb .deb)"
	mkdir -p "$dest/bin"
	cp "$work/deb/x/bin/busybox" "$dest/bin/busybox.tmp"
	mv "$dest/bin/busybox.tmp" "$dest/bin/busybox"
	echo "$dest/bin/busybox"
}

build_web() {
	local t0=$SECONDS ctx="$work/web"
	command -v go >/dev/null 2>&1 || die "go is not on PATH; it builds the web stand-in"
	mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/tmp"
	chmod 1777 "$ctx/rootfs/tmp"
	say "building $web_image"
	# GOWORK=off and the stand-in's own go.mod keep the root module untouched;
	# CGO_ENABLED=0 gives a static binary that runs in FROM scratch.
	(cd "$here/webstandin" && GOWORK=off GOFLAGS='' CGO_ENABLED=0 \
		go build -trimpath -ldflags='-s -w' -o "$ctx/rootfs/standin" .) || die "go build of the web stand-in failed"
	local bb applet
	bb="$(busybox_binary)"
	cp "$bb" "$ctx/rootfs/bin/busybox"
	# Every applet, not only sh/wget/nc/cat: a CMD-SHELL healthcheck copied
	# from an upstream compose file may use any of them.
	for applet in $("$ctx/rootfs/bin/busybox" --list); do
		[ "$applet" = busybox ] || ln -sf busybox "$ctx/rootfs/bin/$applet"
	done
	cat >"$ctx/Dockerfile" <<-DOCKERFILE
		FROM scratch
		COPY rootfs/ /
		ENV PATH=/bin
		EXPOSE 8080
		ENTRYPOINT ["/standin"]
	DOCKERFILE
	docker_build "$web_image" "$web_inputs" "$ctx"
	say "built $web_image in $((SECONDS - t0)) s"
}

build_pg_rootfs_tar() {
	local t0=$SECONDS root="$work/pgroot"
	testenv_root_init "debootstrap of the PostgreSQL rootfs"
	command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
	say "debootstrap $pg_suite minbase + $pg_packages from $mirror (about a minute)"
	if ! as_root debootstrap --variant=minbase --include="$pg_packages" "$pg_suite" "$root" "$mirror" >&2; then
		# The target, log included, is deleted on exit: show the log now.
		tail -n 30 "$root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
		die "debootstrap $pg_suite from $mirror failed (last lines of its log above)"
	fi
	# The package's default cluster and its config would only confuse: the
	# entrypoint makes its own cluster in $PGDATA. Downloaded .debs and apt
	# lists are dead weight in the image.
	as_root rm -rf "$root/var/lib/postgresql/15/main" "$root/etc/postgresql/15/main" \
		"$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root/debootstrap"
	local tool
	for tool in usr/bin/setpriv usr/lib/postgresql/15/bin/postgres usr/lib/postgresql/15/bin/initdb \
		usr/lib/postgresql/15/bin/pg_ctl usr/lib/postgresql/15/bin/psql usr/lib/postgresql/15/bin/pg_isready; do
		[ -x "$root/$tool" ] || die "the rootfs has no /$tool; the entrypoint needs it"
	done
	# Write then rename, so an interrupted run never leaves a truncated cache.
	as_root tar --numeric-owner -C "$root" -cf "$pg_rootfs_tar.tmp" \
		--exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' .
	as_root mv "$pg_rootfs_tar.tmp" "$pg_rootfs_tar"
	say "cached rootfs $pg_rootfs_tar ($(du -h "$pg_rootfs_tar" | cut -f1)) in $((SECONDS - t0)) s"
}

build_pg() {
	local t0=$SECONDS ctx="$work/pg"
	if ! docker image inspect "$pg_rootfs_image" >/dev/null 2>&1; then
		[ -s "$pg_rootfs_tar" ] || build_pg_rootfs_tar
		local t1=$SECONDS
		say "importing $pg_rootfs_tar as $pg_rootfs_image"
		docker import "$pg_rootfs_tar" "$pg_rootfs_image" >/dev/null || die "docker import failed"
		say "imported $pg_rootfs_image in $((SECONDS - t1)) s"
	fi
	say "building $pg_image"
	mkdir -p "$ctx"
	install -m 0755 "$here/postgres/docker-entrypoint.sh" "$ctx/docker-entrypoint.sh"
	# PATH puts Debian's versioned bin first: /usr/bin/psql is pg_wrapper, a
	# perl script that wants a Debian-managed cluster, not the real client.
	# LANG=C.UTF-8 (in libc, no locales package) makes initdb choose UTF8.
	# SIGINT is PostgreSQL's fast shutdown, as in the official image.
	cat >"$ctx/Dockerfile" <<-DOCKERFILE
		FROM $pg_rootfs_image
		COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
		ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
		    LANG=C.UTF-8 \\
		    PGDATA=/var/lib/postgresql/data
		VOLUME /var/lib/postgresql/data
		EXPOSE 5432
		STOPSIGNAL SIGINT
		ENTRYPOINT ["docker-entrypoint.sh"]
		CMD ["postgres"]
	DOCKERFILE
	docker_build "$pg_image" "$pg_inputs" "$ctx"
	say "built $pg_image in $((SECONDS - t0)) s"
}

t0=$SECONDS
image_current "$web_image" "$web_inputs" || build_web
image_current "$pg_image" "$pg_inputs" || build_pg
say "images ready in $((SECONDS - t0)) s"
emit
