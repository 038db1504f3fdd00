#!/usr/bin/env bash
# An SSH server on 127.0.0.1 for the test of `phase1.host: ssh://...`, the
# laptop-against-a-VPS case: the docker CLI's connection helper runs
# `ssh ... docker system dial-stdio` on the "remote" side, which here is this
# machine. Installs Debian's openssh-server when missing, makes a host key
# and a client key in the cache, starts sshd when it is not running, and
# prints, for eval:
#   ORCHESTRATOR_TESTENV_SSH_HOST=ssh://root@127.0.0.1:PORT
#   ORCHESTRATOR_TESTENV_SSH_PATH=DIR   (put first on PATH: an `ssh` that uses the test key)
set -euo pipefail
TESTENV_NAME=sshd
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

port="${ORCHESTRATOR_TESTENV_SSH_PORT:-2222}"
dir="$TESTENV_CACHE_DIR/sshd"
with_lock sshd
mkdir -p "$dir/bin"
chmod 700 "$dir"

[ -x /usr/sbin/sshd ] || apt_install openssh-server
[ -f "$dir/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519"
[ -f "$dir/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/client_ed25519"
cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"

# The wrapper gives the connection helper the test key and skips host-key
# prompts, without touching the user's ~/.ssh.
cat > "$dir/bin/ssh" <<WRAP
#!/bin/sh
exec /usr/bin/ssh -F /dev/null -i "$dir/client_ed25519" -o IdentitiesOnly=yes \\
  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "\$@"
WRAP
chmod 755 "$dir/bin/ssh"

running() { [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; }
if ! running; then
	testenv_root_init "starting sshd"
	mkdir -p /run/sshd
	as_root /usr/sbin/sshd -f /dev/null -p "$port" -o ListenAddress=127.0.0.1 \
		-h "$dir/host_ed25519" -o PidFile="$dir/sshd.pid" -o AuthorizedKeysFile="$dir/authorized_keys" \
		-o StrictModes=no -o PasswordAuthentication=no -o PermitRootLogin=prohibit-password \
		-o UsePAM=no -E "$dir/sshd.log"
	for _ in $(seq 50); do running && break; sleep 0.1; done
	running || die "sshd did not start; see $dir/sshd.log"
	say "sshd listening on 127.0.0.1:$port"
fi
# Prove the path end to end before handing it out.
PATH="$dir/bin:$PATH" ssh -p "$port" -o BatchMode=yes -o ConnectTimeout=10 root@127.0.0.1 docker version --format '{{.Server.Version}}' >/dev/null ||
	die "ssh root@127.0.0.1:$port docker version failed; see $dir/sshd.log"
echo "ORCHESTRATOR_TESTENV_SSH_HOST=ssh://root@127.0.0.1:$port"
echo "ORCHESTRATOR_TESTENV_SSH_PATH=$dir/bin"
