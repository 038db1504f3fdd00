#!/bin/sh
# Shipped by orchestrator (templates/catalog/secret-env.sh), as the
# entrypoint of the services whose images read their secrets only from the
# environment (Postiz, Tracardi, Temporal). Usage: sh secret-env.sh COMMAND...
#
# Exports each file in /run/secrets/env as the variable named like the file,
# with the file's content (trailing line breaks dropped), then runs COMMAND
# in this process's place (exec). The values reach COMMAND and its children
# and nothing else: not the container's configuration, which `docker
# inspect` and Portainer show to anyone with access to the engine. (A
# variable set here is visible in /proc/<pid>/environ, to the process's own
# user and to root, as any file the process can read is.)
#
# The files are compose secrets, copied into the container by the engine's
# API before it starts (mode 0444).
set -eu
for f in /run/secrets/env/*; do
  [ -f "$f" ] || continue
  name=${f##*/}
  value=$(cat "$f")
  export "$name=$value"
done
exec "$@"
