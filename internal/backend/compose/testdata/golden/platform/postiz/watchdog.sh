#!/bin/sh
# Shipped by orchestrator (templates/catalog/postiz-watchdog.sh): Postiz's
# command, with a watchdog beside it that makes the container exit when
# Postiz's Temporal worker has no connection to Temporal.
#
# Why it exists. Postiz's orchestrator (the pm2 app that runs the Temporal
# worker) tries its worker's connection once, at start, and never again:
# when Temporal does not answer then, the process keeps running without a
# worker; a worker that fails later is given up after three restarts a
# second apart (nestjs-temporal-core 3.2). pm2 shows the process online,
# every healthcheck passes, and scheduled posts stay queued until a human
# restarts the container (gitroomhq/postiz-app#1748, #2035, #1551).
# depends_on with service_healthy covers `up`, not a Docker daemon restart,
# which starts every container at once. Docker restarts containers that
# exit, never containers that are merely unhealthy, and the alternative (a
# sidecar that restarts unhealthy containers) needs the Docker socket, that
# is root on the host. So the watchdog makes the container exit, `restart:
# unless-stopped` starts it again, and the new orchestrator connects afresh.
#
# How it decides. A worker that runs holds an ESTABLISHED TCP connection to
# Temporal (it long-polls). The watchdog reads /proc/net/tcp and tcp6 and
# counts only the connections owned by processes whose command line contains
# POSTIZ_WATCHDOG_PROCESS (the orchestrator's node process): the backend's
# Temporal client holds its own connection, which says nothing about the
# worker. A check where that process holds none, while Temporal accepts
# connections, is a miss; after POSTIZ_WATCHDOG_MISSES misses in a row it
# stops the container. While Temporal does not answer, a restart would not
# help, so it waits. No process to judge (the orchestrator not started yet,
# or restarting under pm2) is pm2's business, not a miss. Each new set of
# orchestrator processes is left alone for POSTIZ_WATCHDOG_GRACE seconds
# while it starts.
#
# How it stops the container. PID 1 ignores every signal it has no handler
# for, and from inside the container even SIGKILL; PID 1 here is sh (or
# pnpm). So it sends SIGTERM to PID 1, in case it handles it, and to every
# other process: once PID 1's child is gone, PID 1 exits, and with it the
# container. SIGKILL follows after POSTIZ_WATCHDOG_STOP_TIMEOUT seconds.
#
# Usage, as the container's command: sh postiz-watchdog.sh [COMMAND...].
# Without arguments it runs Postiz's own command (the image's CMD,
# `sh -c "nginx && pnpm run pm2"`), with exec, so that PID 1 and signals are
# as without the watchdog. Arguments replace that command.
#
# Environment (seconds unless said otherwise):
#   TEMPORAL_ADDRESS               host:port, as Postiz reads it (default localhost:7233)
#   POSTIZ_WATCHDOG                off: no watchdog, only the command
#   POSTIZ_WATCHDOG_PROCESS        text in the worker's command line (default apps/orchestrator/;
#                                  empty: any process)
#   POSTIZ_WATCHDOG_GRACE          start-up time given to new orchestrator processes (default 120)
#   POSTIZ_WATCHDOG_INTERVAL       time between checks (default 15)
#   POSTIZ_WATCHDOG_MISSES         misses in a row that stop the container (default 4)
#   POSTIZ_WATCHDOG_STOP_TIMEOUT   time between SIGTERM and SIGKILL (default 10)
#
# POSIX sh (dash, busybox ash); needs grep, ls, date, sleep, and nc or node
# to ask whether Temporal answers. Every line it logs starts with
# "postiz-watchdog:". Phase 2 (Kubernetes) is to run the same check as a
# liveness probe.

log() { printf 'postiz-watchdog: %s\n' "$*" >&2; }

# seconds NAME VALUE DEFAULT prints VALUE when it is a positive integer,
# else DEFAULT (with a warning when NAME was set to something else).
seconds() {
	case $2 in
	'') echo "$3" ;;
	*[!0-9]* | 0*) log "ignoring $1=$2 (not a positive integer); using $3" && echo "$3" ;;
	*) echo "$2" ;;
	esac
}

# cmdlines_matching prints the /proc/PID/cmdline files that contain
# $pattern. grep reads the pattern on stdin, so that its own command line
# does not match.
cmdlines_matching() {
	# shellcheck disable=SC2062 # a glob of files, not a pattern
	grep -l -F -f - /proc/[0-9]*/cmdline 2>/dev/null <<EOF
$pattern
EOF
}

# skip PID succeeds when PID is gone, or is the watchdog or its child or
# grandchild (the subshells that run these functions): they carry the
# script's command line, which contains $pattern when the command is given
# as arguments.
skip() {
	p=$1
	read -r st 2>/dev/null <"/proc/$p/stat" || return 0
	for _ in 1 2 3; do
		[ "$p" = "$self_pid" ] && return 0
		st=${st##*') '}
		p=${st#* }
		p=${p%% *}
		read -r st 2>/dev/null <"/proc/$p/stat" || return 1
	done
	return 1
}

# matching_pids prints the PIDs of the processes to judge, in the order of
# the /proc listing.
matching_pids() {
	for f in $(cmdlines_matching); do
		f=${f#/proc/}
		f=${f%/cmdline}
		skip "$f" || printf '%s ' "$f"
	done
}

# socket_inodes PID prints the inodes of the sockets PID has open.
socket_inodes() {
	# shellcheck disable=SC2012 # only ls shows where the fd links point without a process per fd
	ls -l "/proc/$1/fd" 2>/dev/null | while read -r line; do
		case $line in
		*'socket:['*']') i=${line##*'socket:['} && printf '%s ' "${i%']'}" ;;
		esac
	done
}

# connected PIDS succeeds when one of PIDS has an ESTABLISHED TCP
# connection (state 01) to port $port_hex.
connected() {
	sockets=' '
	for pid in $1; do
		sockets="$sockets$(socket_inodes "$pid")"
	done
	for table in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$table" ] || continue
		while read -r _sl _local remote tcp_state _queues _timer _retransmits _uid _timeout inode _rest; do
			[ "$tcp_state" = 01 ] || continue
			case $remote in *":$port_hex") ;; *) continue ;; esac
			case $sockets in *" $inode "*) return 0 ;; esac
		done <"$table"
	done
	return 1
}

# temporal_answers succeeds when Temporal accepts a TCP connection, or when
# there is no tool to ask with (then the worker's connection alone decides).
temporal_answers() {
	if command -v nc >/dev/null 2>&1; then
		nc -w 5 "$host" "$port" </dev/null >/dev/null 2>&1
	elif command -v node >/dev/null 2>&1; then
		WATCHDOG_HOST=$host WATCHDOG_PORT=$port node -e '
			const s = require("net").connect(Number(process.env.WATCHDOG_PORT), process.env.WATCHDOG_HOST);
			s.setTimeout(5000, () => process.exit(1));
			s.on("connect", () => process.exit(0));
			s.on("error", () => process.exit(1));' >/dev/null 2>&1
	else
		return 0
	fi
}

# report STATE MESSAGE logs MESSAGE when the state changes, so a steady
# state logs one line, not one per check.
report() {
	[ "$state" = "$1" ] && return
	state=$1
	log "$2"
}

stop_container() {
	kill -TERM 1 2>/dev/null
	kill -TERM -1 2>/dev/null
	sleep "$stop_timeout"
	log "the container still runs $stop_timeout s after SIGTERM; sending SIGKILL"
	kill -KILL -1 2>/dev/null
	sleep 5
	log "PID 1 did not exit; restart the container by hand"
}

watchdog() {
	# It stops the container by signalling every process it can see: on a
	# host, that would be every process of the machine.
	if [ "$$" != 1 ]; then
		log "not the container's PID 1; not watching"
		return
	fi
	# This runs in a subshell, where $$ is still the script's PID.
	read -r self_pid </proc/self/stat
	self_pid=${self_pid%% *}
	address=${TEMPORAL_ADDRESS:-localhost:7233}
	host=${address%:*}
	port=${address##*:}
	if [ "$host" = "$address" ]; then
		port=7233
	fi
	host=${host#\[}
	host=${host%\]}
	case $port in
	'' | *[!0-9]*)
		log "cannot read a port in TEMPORAL_ADDRESS=$address; not watching"
		return
		;;
	esac
	port_hex=$(printf '%04X' "$port")
	pattern=${POSTIZ_WATCHDOG_PROCESS-apps/orchestrator/}
	grace=$(seconds POSTIZ_WATCHDOG_GRACE "${POSTIZ_WATCHDOG_GRACE:-}" 120)
	interval=$(seconds POSTIZ_WATCHDOG_INTERVAL "${POSTIZ_WATCHDOG_INTERVAL:-}" 15)
	misses_max=$(seconds POSTIZ_WATCHDOG_MISSES "${POSTIZ_WATCHDOG_MISSES:-}" 4)
	stop_timeout=$(seconds POSTIZ_WATCHDOG_STOP_TIMEOUT "${POSTIZ_WATCHDOG_STOP_TIMEOUT:-}" 10)
	log "watching the connection to $address of the processes matching '$pattern':" \
		"from $grace s after they start, every $interval s; the container stops after $misses_max misses in a row"
	answers=", which answers"
	if ! command -v nc >/dev/null 2>&1 && ! command -v node >/dev/null 2>&1; then
		log "neither nc nor node is here to ask whether $address answers: every check without a connection is a miss"
		answers=
	fi

	state=
	pids_judged=
	judge_from=0
	misses=0
	first_miss=0
	while :; do
		sleep "$interval"
		pids=$(matching_pids)
		if [ -z "$pids" ]; then
			report none "no process matches '$pattern'; waiting for one"
			pids_judged=
			misses=0
			continue
		fi
		now=$(date +%s)
		if [ "$pids" != "$pids_judged" ]; then
			# New processes (the container's start, or pm2 restarting the
			# orchestrator): give them time to connect.
			pids_judged=$pids
			judge_from=$((now + grace))
			misses=0
		fi
		[ "$now" -ge "$judge_from" ] || continue
		if connected "$pids"; then
			report connected "connected to $address"
			misses=0
			continue
		fi
		if ! temporal_answers; then
			report down "no connection to $address, which does not answer either; waiting for it (a restart would not help)"
			misses=0
			continue
		fi
		misses=$((misses + 1))
		if [ "$misses" -eq 1 ]; then
			first_miss=$now
			report missing "no connection to $address$answers; the container stops after $misses_max such checks in a row"
		fi
		if [ "$misses" -ge "$misses_max" ]; then
			log "no connection to $address in $misses checks over $((now - first_miss)) s; exiting so Docker restarts the container"
			stop_container
			return
		fi
	done
}

if [ $# -eq 0 ]; then
	# Postiz's CMD (gitroomhq/postiz-app Dockerfile.dev).
	set -- sh -c 'nginx && pnpm run pm2'
fi
case ${POSTIZ_WATCHDOG:-on} in
off | false | 0) ;;
*) watchdog & ;;
esac
exec "$@"
