#!/usr/bin/env bash
# Builds the Caddy the rendered proxy runs (the version of the pinned
# caddy:2.10.2-alpine image), once per machine, so tests can run the rendered
# Caddyfile against the real server. The module comes through the Go module
# proxy; no Docker registry or image is needed.
#
# On success, stdout carries one line for eval:
#   ORCHESTRATOR_TESTENV_CADDY=/path/to/caddy
# progress goes to stderr.
#
# Environment:
#   XDG_CACHE_HOME   cache root (default $HOME/.cache)
set -euo pipefail

TESTENV_NAME=caddy
# shellcheck source=hack/testenv/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Keep in step with the proxy image in templates/catalog/catalog.yaml.
version=v2.10.2
dir="$TESTENV_CACHE_DIR/caddy-$version"
bin="$dir/caddy"

emit() { printf 'ORCHESTRATOR_TESTENV_CADDY=%s\n' "$bin"; }

# Fast path without the lock: the common case on every run after the first.
if [ -x "$bin" ]; then
	emit
	exit 0
fi

with_lock "caddy-$version"

# Another caller may have built it while we waited for the lock.
if [ -x "$bin" ]; then
	emit
	exit 0
fi

command -v go >/dev/null 2>&1 || die "go is not on PATH; it is needed to build caddy $version"

mkdir -p "$dir"
t0=$SECONDS
say "building caddy $version into $dir (once per machine; about 90 s on 2 cores)"
# Outside any module, so this repository's go.mod and a go.work play no part;
# GOFLAGS from the caller (say -mod=vendor) would not fit the build either.
# go install may copy the binary into GOBIN rather than rename it, so it
# installs beside the final name and the rename makes it appear whole: an
# interrupted build must not leave a half-written caddy that the fast path
# above would hand out.
rm -rf "$dir/install"
(cd "$dir" && GOWORK=off GOFLAGS= GOBIN="$dir/install" go install "github.com/caddyserver/caddy/v2/cmd/caddy@$version") >&2 ||
	die "go install github.com/caddyserver/caddy/v2/cmd/caddy@$version failed (see the output above)"
[ -x "$dir/install/caddy" ] || die "go install finished but $dir/install/caddy is missing"
mv "$dir/install/caddy" "$bin"
rmdir "$dir/install"
# `caddy version` says "unknown" for a binary built as the main module (it
# reads the version from its own entry in the dependency list), so this only
# checks that it runs; `go version -m` shows the module version.
"$bin" version >/dev/null 2>&1 || die "$bin does not run ('$bin version' failed)"
say "built caddy $version in $((SECONDS - t0)) s"
emit
