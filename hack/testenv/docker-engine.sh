#!/usr/bin/env bash
# Ensures a Docker engine answers `docker info`, installing Debian's docker.io
# and starting dockerd when needed. The test command calls it on every run,
# possibly from several test processes at once: it is a no-op when an engine
# already answers.
#
# Environment:
#   XDG_CACHE_HOME                  cache root (default $HOME/.cache)
#   ORCHESTRATOR_TESTENV_DEADLINE   seconds to wait for dockerd (default 60)
set -euo pipefail

TESTENV_NAME=docker-engine
# shellcheck source=hack/testenv/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log_file="$TESTENV_CACHE_DIR/dockerd.log"
deadline_s="${ORCHESTRATOR_TESTENV_DEADLINE:-60}"
# Debian's dockerd writes its pid here; reading it lets us wait for an engine
# someone else is still starting instead of launching a second one.
pid_file=/var/run/docker.pid

engine_up() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

# Fast path without the lock: the common case on every run after the first.
if engine_up; then
	exit 0
fi

# A remote or non-default engine is the caller's business; starting a local
# dockerd would not make that one answer.
case "${DOCKER_HOST:-}" in
"" | unix:///var/run/docker.sock | unix:///run/docker.sock) ;;
*) die "DOCKER_HOST=$DOCKER_HOST does not answer 'docker info'; unset DOCKER_HOST to let this script start a local engine" ;;
esac

with_lock docker-engine 600

# Another caller may have brought the engine up while we waited for the lock.
if engine_up; then
	exit 0
fi

testenv_root_init "starting a Docker engine"

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
	apt_install docker.io
	command -v dockerd >/dev/null 2>&1 || die "docker.io is installed but dockerd is not on PATH ($PATH)"
fi

dockerd_pid() {
	local pid
	pid="$(cat "$pid_file" 2>/dev/null || true)"
	if [ -n "$pid" ] && grep -qs '^dockerd$' "/proc/$pid/comm"; then
		echo "$pid"
	fi
}

if pid="$(dockerd_pid)" && [ -n "$pid" ]; then
	say "dockerd (pid $pid) is running but not answering yet; waiting up to ${deadline_s} s"
else
	say "starting dockerd (log: $log_file)"
	printf '\n==== %s: started by %s ====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$0" >>"$log_file"
	# No systemd here owns dockerd, so it must outlive this script and the test
	# process group that called it: nohup + setsid. 9>&- stops it inheriting
	# the lock, which it would otherwise hold for its whole life.
	as_root nohup setsid dockerd </dev/null >>"$log_file" 2>&1 9>&- &
fi

fail() {
	say "$1; last lines of $log_file:"
	tail -n 30 "$log_file" >&2 || true
	die "$2"
}

t0=$SECONDS
until engine_up; do
	elapsed=$((SECONDS - t0))
	# Give dockerd a moment to write its pid file before judging it dead.
	if [ "$elapsed" -ge 3 ] && [ -z "$(dockerd_pid)" ]; then
		fail "dockerd is not running" "Docker engine did not start"
	fi
	if [ "$elapsed" -ge "$deadline_s" ]; then
		fail "dockerd did not answer 'docker info' within ${deadline_s} s" "Docker engine not reachable"
	fi
	sleep 0.5
done
say "Docker engine ready after $((SECONDS - t0)) s ($(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}' 2>/dev/null || echo 'version unknown'))"
