# shellcheck shell=bash
# Shared helpers for hack/testenv/*.sh. Sourced, not run; the caller sets
# `set -euo pipefail` and TESTENV_NAME (the prefix of progress lines).

TESTENV_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/orchestrator/testenv"

say() { printf 'testenv/%s: %s\n' "${TESTENV_NAME:-testenv}" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# testenv_root_init fills TESTENV_ROOT with the prefix that runs a command as
# root: nothing for root, `sudo -n` when that works without a password (nobody
# is there to type one), else it fails with what needed root.
testenv_root_init() {
	TESTENV_ROOT=()
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
			TESTENV_ROOT=(sudo -n)
		else
			die "$1 needs root (or password-less sudo)"
		fi
	fi
}

# as_root CMD...: run CMD with the prefix from testenv_root_init. The ${x[@]+...}
# form keeps `set -u` quiet on an empty array in older bash.
as_root() { ${TESTENV_ROOT[@]+"${TESTENV_ROOT[@]}"} "$@"; }

# apt_install PKG...: install Debian packages, refreshing the package lists
# only when the install fails: update is the slow, network-bound half, and a
# fresh machine's lists usually still serve the package.
apt_install() {
	testenv_root_init "installing $*"
	local t0=$SECONDS
	say "installing $* with apt-get"
	# The lock timeout waits out a concurrent apt/dpkg instead of failing.
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		-o DPkg::Lock::Timeout=300 --no-install-recommends "$@" >&2; then
		say "apt-get install failed; running apt-get update and retrying"
		# Unreachable third-party sources make update exit non-zero even when
		# Debian's own lists refreshed; the retried install is the real test.
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q \
			-o DPkg::Lock::Timeout=300 >&2 || say "apt-get update reported errors; trying the install anyway"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			-o DPkg::Lock::Timeout=300 --no-install-recommends "$@" >&2 ||
			die "apt-get install $* failed (see the output above)"
	fi
	hash -r
	say "installed $* in $((SECONDS - t0)) s"
}

# with_lock NAME: hold $TESTENV_CACHE_DIR/NAME.lock on fd 9 until the caller
# exits, so concurrent test processes build or start things once.
with_lock() {
	mkdir -p "$TESTENV_CACHE_DIR"
	exec 9>"$TESTENV_CACHE_DIR/$1.lock"
	if flock -n 9; then
		return 0
	fi
	say "waiting for another run holding $TESTENV_CACHE_DIR/$1.lock"
	if ! flock -w "${2:-600}" 9; then
		die "timed out after ${2:-600} s waiting for $TESTENV_CACHE_DIR/$1.lock (another run still busy?)"
	fi
}
