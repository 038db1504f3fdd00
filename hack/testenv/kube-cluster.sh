#!/usr/bin/env bash
# A real single-node Kubernetes cluster that runs pods, for the Phase 2
# end-to-end tests: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet on its own instance of Debian's containerd + runc,
# kube-proxy (iptables), the CNI bridge, CoreDNS and rancher's local-path
# provisioner (the default StorageClass). Every binary is built from the Go
# module proxy into the cache once per machine (kube/build.sh); no registry is
# needed, since images are imported from tarballs or from the local Docker
# engine.
#
# Usage:
#   kube-cluster.sh up               build what is missing, start the cluster (a no-op
#                                    when it already answers) and print, for eval:
#                                      KUBECONFIG=/path/to/kubeconfig
#                                      ORCHESTRATOR_TESTENV_KUBECTL=/path/to/kubectl
#   kube-cluster.sh down [--purge]   stop what `up` started, undo its host changes, delete
#                                    the cluster's state; --purge also drops imported images
#   kube-cluster.sh load-image IMG...  copy images from the local Docker engine into the
#                                    cluster's containerd (skipped when already there)
#   kube-cluster.sh selftest         pod Ready, exec, port-forward, Service + DNS, and a
#                                    StatefulSet PVC whose data survives its pod
#   kube-cluster.sh build            only build the binaries and images
#   kube-cluster.sh env | status     the eval lines of a running cluster | processes, nodes, pods
#
# Pods must use imagePullPolicy Never or IfNotPresent and a tag other than
# :latest: nothing can be pulled here.
#
# Environment:
#   XDG_CACHE_HOME                          cache root (default $HOME/.cache)
#   ORCHESTRATOR_TESTENV_KUBE_DIR           cluster state (default <cache>/orchestrator/testenv/kube/cluster)
#   ORCHESTRATOR_TESTENV_KUBE_POD_CIDR      pod range (default 10.244.0.0/24)
#   ORCHESTRATOR_TESTENV_KUBE_SERVICE_CIDR  Service range (default 10.97.0.0/16)
#   ORCHESTRATOR_TESTENV_KUBE_API_PORT      API server port (default 26443)
#   ORCHESTRATOR_TESTENV_KUBE_KEEP_FAILED=1 leave a failed `up` running for inspection
set -euo pipefail

TESTENV_NAME=kube-cluster
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/testenv/lib.sh
. "$here/lib.sh"

KUBE_SRC="$here/kube"
KUBE_CACHE="$TESTENV_CACHE_DIR/kube"
# Versions: every cached folder is keyed by its version, so bumping one here
# builds the new one next to the old.
k8s_version=v1.37.2
staging_version=v0.37.2 # k8s.io/api, client-go, ... of that release
etcd_version=v3.6.16
cni_version=v1.10.0
coredns_version=v1.15.0
local_path_version=v0.0.30 # the newest the module proxy lists
crictl_version=v1.37.0
# shellcheck source=hack/testenv/kube/build.sh
. "$KUBE_SRC/build.sh"

KUBE_DIR="${ORCHESTRATOR_TESTENV_KUBE_DIR:-$KUBE_CACHE/cluster}"
# Addresses. Both ranges stay clear of Docker's 172.17.0.0/16 and of its
# default pools for compose networks (172.18-31.0.0/16, 192.168.0.0/16).
pod_cidr="${ORCHESTRATOR_TESTENV_KUBE_POD_CIDR:-10.244.0.0/24}"
svc_cidr="${ORCHESTRATOR_TESTENV_KUBE_SERVICE_CIDR:-10.97.0.0/16}"
svc_base="${svc_cidr%/*}"
svc_base="${svc_base%.*}"
api_svc_ip="$svc_base.1"  # the `kubernetes` Service
dns_ip="$svc_base.10"     # the `kube-dns` Service
cluster_domain=cluster.local
# Ports: away from the defaults (10250, 6443, 2379, ...) so a host's own
# cluster is left alone, and below the ephemeral range Docker publishes in.
api_port="${ORCHESTRATOR_TESTENV_KUBE_API_PORT:-26443}"
etcd_port=22379
etcd_peer_port=22380
kubelet_port=20250
kubelet_healthz_port=20248
cm_port=20257
sched_port=20259
proxy_healthz_port=20256
proxy_metrics_port=20249
# Names that tag what the cluster puts on the host, so `down` removes exactly that.
node_name=testenv-node
bridge=kube-testenv0
cni_net=orchestrator-testenv
cgroup_root=orchestrator-testenv-kube
fw_comment=orchestrator-testenv-kube

run="$KUBE_DIR/run"
logs="$KUBE_DIR/logs"
pki="$KUBE_DIR/pki"
sock="$KUBE_DIR/containerd/containerd.sock"
kubeconfig="$KUBE_DIR/kubeconfig"
kubectl_bin="$k8s_dir/bin/kubectl"
# containerd's image store outlives `down`, so images imported once (a 430 MB
# PostgreSQL takes ~15 s) are still there after the next `up`.
ctrd_root="$KUBE_DIR/containerd-root"
# Stopped in this order: the node side first, then the control plane, the
# API server before etcd (else it spends its grace period retrying etcd).
components=(kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd containerd)
# The host's values of the sysctls the kubelet (and kube-proxy) rewrite.
saved_sysctls=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
	kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/conf/all/route_localnet
	net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables)
# Label on each image in the cluster's containerd: what it was imported from.
source_label=io.github.aipairpro.orchestrator.testenv.source

emit() {
	printf 'KUBECONFIG=%s\n' "$kubeconfig"
	printf 'ORCHESTRATOR_TESTENV_KUBECTL=%s\n' "$kubectl_bin"
}

kctl() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }
ctr_k8s() { ctr --address "$sock" --namespace k8s.io "$@"; }

# pid_of NAME: the recorded pid of a component, if that process still runs
# the binary `up` started (a recycled pid is not ours).
pid_of() {
	local pid exe
	pid="$(cat "$run/$1.pid" 2>/dev/null)" || return 1
	exe="$(cat "$run/$1.exe" 2>/dev/null)" || return 1
	# " (deleted)": the binary was rebuilt while it ran; still ours.
	[ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null | sed 's/ (deleted)$//')" = "$exe" ] || return 1
	echo "$pid"
}
alive() { pid_of "$1" >/dev/null; }

# cluster_answers: every component runs and the API server is ready. Used by
# the fast path, so: no kubectl (its start alone costs more than this).
cluster_answers() {
	local c
	[ -s "$kubeconfig" ] && [ -s "$pki/admin.token" ] || return 1
	for c in "${components[@]}"; do alive "$c" || return 1; done
	curl -sf --max-time 3 --cacert "$pki/ca.crt" -H "Authorization: Bearer $(cat "$pki/admin.token")" \
		"https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1
}

# start NAME BIN ARG...: run BIN detached (nohup + setsid: it must outlive
# this script and the test process group that called it), log to
# $logs/NAME.log, record pid and binary. 9>&- keeps the lock from being
# inherited, which the daemon would otherwise hold for its whole life.
start() {
	local name=$1 bin=$2
	shift 2
	printf '\n==== %s: started by %s ====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$0" >>"$logs/$name.log"
	nohup setsid "$bin" "$@" </dev/null >>"$logs/$name.log" 2>&1 9>&- &
	echo $! >"$run/$name.pid"
	readlink -f "$bin" >"$run/$name.exe"
}

# fail_with COMPONENT MESSAGE: the component's log tail, then die.
fail_with() {
	say "$2; last lines of $logs/$1.log:"
	tail -n 30 "$logs/$1.log" >&2 2>/dev/null || true
	die "$2"
}

# wait_for SECONDS WHAT COMPONENT CMD...: poll CMD until it succeeds; fail
# early with the component's log when it exits, or at the deadline.
wait_for() {
	local deadline=$((SECONDS + $1)) what=$2 comp=$3
	shift 3
	until "$@" >/dev/null 2>&1; do
		alive "$comp" || fail_with "$comp" "$comp exited while waiting for $what"
		[ "$SECONDS" -lt "$deadline" ] || fail_with "$comp" "timed out waiting for $what"
		sleep 0.25
	done
}

# ---------------------------------------------------------------- host setup

node_ip() {
	local ip
	ip="$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }')"
	[ -n "$ip" ] || ip="$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }')"
	[ -n "$ip" ] || die "no global IPv4 address found; pods reach the API server through the node's address"
	echo "$ip"
}

# resolv_conf: the file pods with dnsPolicy Default (CoreDNS among them) get.
# A loopback nameserver (systemd-resolved's 127.0.0.53) means nothing inside a
# pod and makes CoreDNS's loop check fail, so prefer resolved's real list.
resolv_conf() {
	local f
	for f in /etc/resolv.conf /run/systemd/resolve/resolv.conf; do
		if [ -f "$f" ] && grep -Eq '^nameserver[[:space:]]+([0-9]|[a-fA-F:])' "$f" &&
			grep -E '^nameserver' "$f" | grep -Evq '[[:space:]](127\.|::1)'; then
			echo "$f"
			return
		fi
	done
	echo ""
}

need_commands() {
	local missing=() c
	command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 || missing+=(containerd)
	command -v runc >/dev/null 2>&1 || missing+=(runc)
	command -v iptables >/dev/null 2>&1 || missing+=(iptables)
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	command -v openssl >/dev/null 2>&1 || missing+=(openssl)
	command -v curl >/dev/null 2>&1 || missing+=(curl)
	command -v ss >/dev/null 2>&1 || missing+=(iproute2)
	if [ ${#missing[@]} -gt 0 ]; then
		# Debian's containerd is the one docker.io uses; a second instance of it
		# (own config, socket and root) is what the kubelet talks to.
		# shellcheck disable=SC2046
		apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
	fi
	for c in containerd ctr runc iptables ip openssl curl ss; do
		command -v "$c" >/dev/null 2>&1 || die "$c is not on PATH after installing its package"
	done
}

check_ports() {
	local p holder
	for p in "$api_port" "$etcd_port" "$etcd_peer_port" "$kubelet_port" "$kubelet_healthz_port" "$cm_port" \
		"$sched_port" "$proxy_healthz_port" "$proxy_metrics_port"; do
		holder="$(ss -Htlnp "sport = :$p" 2>/dev/null | head -n1)"
		[ -z "$holder" ] || die "port $p is in use ($holder); is another cluster running? ($0 down stops this one)"
	done
}

save_host_state() {
	local k
	# The kubelet writes its log links and device-plugin socket to fixed paths.
	[ -d /var/log/containers ] || touch "$run/created-var-log-containers"
	[ -d /var/lib/kubelet ] || touch "$run/created-var-lib-kubelet"
	: >"$run/sysctl.orig"
	for k in "${saved_sysctls[@]}"; do
		[ -r "/proc/sys/$k" ] && echo "$k $(cat "/proc/sys/$k")" >>"$run/sysctl.orig"
	done
	return 0
}

setup_kernel() {
	# Pod traffic is routed, and bridged pod traffic must pass iptables for
	# Services to work between pods on the bridge. Docker already sets both;
	# `down` puts back whatever was there before.
	[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || echo 1 >/proc/sys/net/ipv4/ip_forward
	if [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
		modprobe br_netfilter 2>/dev/null || true
		# The module's defaults are unknown until it is loaded: record them now.
		[ -r /proc/sys/net/bridge/bridge-nf-call-iptables ] &&
			echo "net/bridge/bridge-nf-call-iptables 0" >>"$run/sysctl.orig"
	fi
	if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
		[ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)" = 1 ] || echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
	else
		say "warning: br_netfilter is not available; pod-to-Service traffic on the bridge may fail"
	fi
}

# setup_cgroups: the kubelet's cgroupRoot must exist before it starts. On
# cgroup v1 that is one folder per hierarchy (cpuset needs its cpus and mems
# copied from the parent); on v2 one folder with the controllers delegated.
setup_cgroups() {
	local h
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		mkdir -p "/sys/fs/cgroup/$cgroup_root"
		sed 's/[^ ]*/+&/g' /sys/fs/cgroup/cgroup.subtree_control >"/sys/fs/cgroup/$cgroup_root/cgroup.subtree_control" 2>/dev/null ||
			say "warning: could not delegate controllers to /sys/fs/cgroup/$cgroup_root"
		return 0
	fi
	for h in /sys/fs/cgroup/*/; do
		h=${h%/}
		[ -f "$h/cgroup.procs" ] || continue
		case "$h" in */unified) continue ;; esac
		mkdir -p "$h/$cgroup_root"
		if [ -f "$h/cpuset.cpus" ]; then
			cat "$h/cpuset.cpus" >"$h/$cgroup_root/cpuset.cpus"
			cat "$h/cpuset.mems" >"$h/$cgroup_root/cpuset.mems"
		fi
	done
}

# setup_iptables: Docker sets the FORWARD policy to DROP and accepts only its
# own bridges, so pod-to-pod traffic over ours needs its own ACCEPT rules.
# Inserted (never a policy change or a flush), tagged, removed by `down`.
setup_iptables() {
	local dir
	for dir in -s -d; do
		iptables -C FORWARD "$dir" "$pod_cidr" -m comment --comment "$fw_comment" -j ACCEPT 2>/dev/null ||
			iptables -I FORWARD 1 "$dir" "$pod_cidr" -m comment --comment "$fw_comment" -j ACCEPT
	done
}

# ---------------------------------------------------------------- config

gen_pki() {
	local ip=$1 u
	mkdir -p "$pki"
	(
		cd "$pki"
		umask 077
		openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
		openssl req -x509 -new -key ca.key -out ca.crt -days 3650 -subj "/CN=orchestrator-testenv-kube-ca" 2>/dev/null
		# The API server's serving certificate: every name a client may use,
		# pods included (the `kubernetes` Service and the node address).
		printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' \
			"subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$cluster_domain,IP:127.0.0.1,IP:$api_svc_ip,IP:$ip" >apiserver.ext
		openssl ecparam -name prime256v1 -genkey -noout -out apiserver.key 2>/dev/null
		openssl req -new -key apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile apiserver.ext 2>/dev/null
		# What the API server presents to the kubelet for exec, logs and port-forward.
		printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=clientAuth' >client.ext
		openssl ecparam -name prime256v1 -genkey -noout -out kubelet-client.key 2>/dev/null
		openssl req -new -key kubelet-client.key -out kubelet-client.csr -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
		openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kubelet-client.crt -days 3650 -extfile client.ext 2>/dev/null
		# Service-account token signing key.
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
		# Static tokens, new on every `up`: the API server listens on the node's
		# address too (pods reach it there), so no well-known secret.
		for u in admin node controller-manager scheduler kube-proxy; do openssl rand -hex 24 >"$u.token"; done
		{
			echo "$(cat admin.token),orchestrator-testenv-admin,orchestrator-testenv-admin,system:masters"
			echo "$(cat node.token),system:node:$node_name,system:node:$node_name,system:nodes"
			echo "$(cat controller-manager.token),system:kube-controller-manager,system:kube-controller-manager"
			echo "$(cat scheduler.token),system:kube-scheduler,system:kube-scheduler"
			echo "$(cat kube-proxy.token),system:kube-proxy,system:kube-proxy"
		} >tokens.csv
		chmod 0644 ca.crt
	) || die "making the cluster's certificates with openssl failed"
	for u in admin node controller-manager scheduler kube-proxy; do
		(
			umask 077
			cat >"$KUBE_DIR/$u.kubeconfig" <<-EOF
				apiVersion: v1
				kind: Config
				clusters:
				- name: orchestrator-testenv
				  cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$pki/ca.crt"}
				users:
				- name: $u
				  user: {tokenFile: "$pki/$u.token"}
				contexts:
				- name: orchestrator-testenv
				  context: {cluster: orchestrator-testenv, user: $u}
				current-context: orchestrator-testenv
			EOF
		)
	done
	cp "$KUBE_DIR/admin.kubeconfig" "$kubeconfig.tmp"
	mv "$kubeconfig.tmp" "$kubeconfig"
	# Run through sudo: the caller's tests read the admin credentials.
	if [ -n "${SUDO_UID:-}" ]; then
		chown "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$kubeconfig" "$pki/admin.token" || true
	fi
}

write_configs() {
	local ip=$1 resolv=$2
	mkdir -p "$KUBE_DIR/containerd" "$ctrd_root" "$KUBE_DIR/cni/net.d" "$KUBE_DIR/kubelet" "$KUBE_DIR/pod-logs" "$KUBE_DIR/local-path"
	# Debian's containerd 1.6, its own instance: socket, root and state here,
	# so Docker's containerd (/var/run/docker/containerd) is never touched.
	cat >"$KUBE_DIR/containerd/config.toml" <<-EOF
		version = 2
		root = "$ctrd_root"
		state = "$KUBE_DIR/containerd/state"
		disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
		[grpc]
		  address = "$sock"
		[ttrpc]
		  address = "$sock.ttrpc"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$KUBE_DIR/containerd/opt"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "docker.io/$pause_image"
		  stream_server_address = "127.0.0.1"
		  stream_server_port = "0"
		  # netns files under the state dir, not /var/run/netns.
		  netns_mounts_under_state_dir = true
		  # Root on these VMs lacks CAP_SYS_RESOURCE, so runc cannot lower
		  # oom_score_adj (the pause container asks for -998) and every sandbox
		  # fails with "can't get final child's PID from pipe: EOF". This clamps
		  # the value to containerd's own.
		  restrict_oom_score_adj = true
		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "overlayfs"
		    default_runtime_name = "runc"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
		        SystemdCgroup = false
		        Root = "$KUBE_DIR/runc"
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "$cni_dir"
		    conf_dir = "$KUBE_DIR/cni/net.d"
	EOF
	cat >"$KUBE_DIR/cni/net.d/10-$cni_net.conflist" <<-EOF
		{
		  "cniVersion": "1.0.0",
		  "name": "$cni_net",
		  "plugins": [
		    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": true, "hairpinMode": true,
		     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$pod_cidr"}]], "routes": [{"dst": "0.0.0.0/0"}],
		              "dataDir": "$KUBE_DIR/cni/ipam"}},
		    {"type": "portmap", "capabilities": {"portMappings": true}}
		  ]
		}
	EOF
	cat >"$KUBE_DIR/kubelet-config.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		# Since 1.35 the kubelet refuses a cgroup v1 host unless told otherwise.
		failCgroupV1: false
		cgroupDriver: cgroupfs
		# Pods under /sys/fs/cgroup/*/$cgroup_root: exact clean-up at down.
		cgroupRoot: /$cgroup_root
		containerRuntimeEndpoint: unix://$sock
		imageServiceEndpoint: unix://$sock
		address: 0.0.0.0
		port: $kubelet_port
		readOnlyPort: 0
		healthzBindAddress: 127.0.0.1
		healthzPort: $kubelet_healthz_port
		authentication:
		  anonymous: {enabled: false}
		  webhook: {enabled: true}
		  x509: {clientCAFile: "$pki/ca.crt"}
		authorization: {mode: Webhook}
		podLogsDir: "$KUBE_DIR/pod-logs"
		failSwapOn: false
		resolvConf: "$resolv"
		hairpinMode: hairpin-veth
		serializeImagePulls: false
		evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
		# Never garbage-collect images: imported ones cannot be pulled again.
		imageGCHighThresholdPercent: 100
		imageGCLowThresholdPercent: 99
		clusterDNS: ["$dns_ip"]
		clusterDomain: $cluster_domain
	EOF
	cat >"$KUBE_DIR/kube-proxy-config.yaml" <<-EOF
		apiVersion: kubeproxy.config.k8s.io/v1alpha1
		kind: KubeProxyConfiguration
		clientConnection: {kubeconfig: "$KUBE_DIR/kube-proxy.kubeconfig"}
		hostnameOverride: $node_name
		mode: iptables
		clusterCIDR: $pod_cidr
		healthzBindAddress: 127.0.0.1:$proxy_healthz_port
		metricsBindAddress: 127.0.0.1:$proxy_metrics_port
		# Leave the host's nf_conntrack_max alone.
		conntrack: {maxPerCore: 0}
		nodePortAddresses: ["primary"]
	EOF
}

# ---------------------------------------------------------------- images

# ctr_ref NAME: the reference containerd stores for a Docker-style name.
ctr_ref() {
	local ref=$1 first=${1%%/*}
	case "$ref" in */*) ;; *) ref="library/$ref" ;; esac
	case "$first" in
	*.* | *:* | localhost) [ "$ref" = "$1" ] && { echo "$ref"; return; } ;;
	esac
	echo "docker.io/$ref"
}

# image_present REF SOURCE: REF is in the cluster's containerd and was
# imported from SOURCE (a tarball's name or a Docker image ID).
image_present() {
	ctr_k8s images ls "name==$1" 2>/dev/null | grep -qF "$source_label=$2"
}

# import_tar TAR REF: import one of the cluster's own image tarballs.
import_tar() {
	local key
	key="$(basename "$1" .tar)"
	image_present "$2" "$key" && return 0
	ctr_k8s images import "$1" >>"$logs/image-import.log" 2>&1 || fail_with image-import "importing $1 failed"
	ctr_k8s images label "$2" "$source_label=$key" >/dev/null
}

# load_image IMG: copy IMG from the local Docker engine (docker save | ctr import).
load_image() {
	local img=$1 id ref t0=$SECONDS
	id="$(docker image inspect --format '{{.Id}}' "$img" 2>/dev/null)" ||
		die "image $img is not in the local Docker engine ('docker image inspect $img' failed)"
	ref="$(ctr_ref "$img")"
	if image_present "$ref" "$id"; then
		return 0
	fi
	say "importing $img from the Docker engine"
	# pipefail: a failed `docker save` must not pass as an empty import.
	if ! docker save "$img" | ctr_k8s images import - >>"$logs/image-import.log" 2>&1; then
		fail_with image-import "importing $img failed"
	fi
	ctr_k8s images label "$ref" "$source_label=$id" >/dev/null || die "$img was imported but is not listed as $ref"
	say "imported $img in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- up

apply_addons() {
	local resolv=$1 forward="forward . /etc/resolv.conf"
	# Without a usable upstream, CoreDNS serves the cluster's names only.
	[ -n "$resolv" ] || forward="# no upstream resolver on this host"
	sed -e "s|@DNS_IP@|$dns_ip|g" -e "s|@COREDNS_IMAGE@|$coredns_image|g" \
		-e "s|@CLUSTER_DOMAIN@|$cluster_domain|g" -e "s|@FORWARD@|$forward|g" \
		"$KUBE_SRC/manifests/coredns.yaml" >"$KUBE_DIR/coredns.yaml"
	# The local-path release's own manifest with our image (it also has the
	# shell the helper pods need), volumes under $KUBE_DIR, and made the
	# default StorageClass so claims without a class bind.
	sed -e "s|image: rancher/local-path-provisioner:.*|image: $local_path_image|" \
		-e "s|image: busybox$|image: $local_path_image|" \
		-e "s|/opt/local-path-provisioner|$KUBE_DIR/local-path|" \
		-e 's|^  name: local-path$|  name: local-path\n  annotations: {storageclass.kubernetes.io/is-default-class: "true"}|' \
		"$local_path_dir/local-path-storage.yaml" >"$KUBE_DIR/local-path.yaml"
	grep -q "is-default-class" "$KUBE_DIR/local-path.yaml" || die "could not patch $local_path_dir/local-path-storage.yaml"
	kctl apply -f "$KUBE_DIR/coredns.yaml" -f "$KUBE_DIR/local-path.yaml" >>"$logs/addons.log" 2>&1 ||
		fail_with addons "applying CoreDNS and local-path failed"
}

# rollout NAMESPACE DEPLOYMENT: wait for it; on failure show its pods' state.
rollout() {
	if ! kctl -n "$1" rollout status "deploy/$2" --timeout=120s >>"$logs/addons.log" 2>&1; then
		say "$1/$2 did not become ready; its pods:"
		kctl -n "$1" get pods -o wide >&2 || true
		kctl -n "$1" describe pods 2>/dev/null | sed -n '/^Events:/,$p' | tail -n 15 >&2 || true
		kctl -n "$1" logs "deploy/$2" --tail=20 >&2 2>/dev/null || true
		say "kubelet log: $logs/kubelet.log"
		die "$1/$2 did not become ready"
	fi
}

# dns_answers: CoreDNS resolves a cluster name through the kube-dns Service
# (kube-proxy's rules included), asked from the host.
dns_answers() {
	timeout 3 "$(kube_busybox)" nslookup "kubernetes.default.svc.$cluster_domain" "$dns_ip" 2>/dev/null |
		grep -q "$api_svc_ip"
}

# on_up_failure: a failed `up` stops what it started (logs stay in $logs),
# unless asked to keep it for inspection.
on_up_failure() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		if [ "${ORCHESTRATOR_TESTENV_KUBE_KEEP_FAILED:-}" = 1 ]; then
			say "left the failed cluster running (ORCHESTRATOR_TESTENV_KUBE_KEEP_FAILED=1); '$0 down' stops it"
		else
			say "stopping what this failed 'up' started (component logs stay in $logs)"
			do_down keep-images >/dev/null 2>&1 || true
		fi
	fi
	exit "$rc"
}

do_up() {
	local t0=$SECONDS ip resolv c
	need_commands
	[ ${#sock} -lt 100 ] || die "socket path $sock.ttrpc is too long for a unix socket; set ORCHESTRATOR_TESTENV_KUBE_DIR to a shorter path"
	for c in "${components[@]}"; do
		if [ -e "$run/$c.pid" ]; then
			say "a previous cluster is partly running or was not stopped; stopping it first"
			do_down keep-images
			break
		fi
	done
	check_ports
	ip="$(node_ip)"
	resolv="$(resolv_conf)"
	trap on_up_failure EXIT
	rm -rf "$logs.old"
	[ ! -d "$logs" ] || mv "$logs" "$logs.old"
	mkdir -p "$run" "$logs"
	save_host_state
	setup_kernel
	gen_pki "$ip"
	write_configs "$ip" "$resolv"
	setup_cgroups
	setup_iptables

	start containerd "$(command -v containerd)" --config "$KUBE_DIR/containerd/config.toml"
	start etcd "$etcd_dir/etcd" --name testenv --data-dir "$KUBE_DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
		--initial-cluster "testenv=http://127.0.0.1:$etcd_peer_port" \
		--unsafe-no-fsync --log-level warn
	wait_for 30 "containerd to answer" containerd ctr_k8s version
	# The image store outlives `down`; sandboxes an interrupted run left in
	# it would confuse the new kubelet: remove them (this runs their CNI DEL).
	"$crictl_dir/crictl" --runtime-endpoint "unix://$sock" rmp -af >>"$logs/crictl.log" 2>&1 || true
	import_tar "$pause_tar" "docker.io/$pause_image"
	import_tar "$coredns_tar" "docker.io/$coredns_image"
	import_tar "$local_path_tar" "docker.io/$local_path_image"
	wait_for 30 "etcd to answer" etcd curl -sf "http://127.0.0.1:$etcd_port/health"

	start kube-apiserver "$k8s_dir/bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" \
		--secure-port="$api_port" --bind-address=0.0.0.0 --advertise-address="$ip" --cert-dir="$KUBE_DIR/apiserver-certs" \
		--tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" --client-ca-file="$pki/ca.crt" \
		--kubelet-client-certificate="$pki/kubelet-client.crt" --kubelet-client-key="$pki/kubelet-client.key" \
		--kubelet-preferred-address-types=InternalIP,Hostname \
		--service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
		--service-account-issuer=https://kubernetes.default.svc --token-auth-file="$pki/tokens.csv" \
		--authorization-mode=Node,RBAC --service-cluster-ip-range="$svc_cidr" --allow-privileged=true
	wait_for 90 "the API server to be ready" kube-apiserver \
		curl -sf --cacert "$pki/ca.crt" -H "Authorization: Bearer $(cat "$pki/admin.token")" "https://127.0.0.1:$api_port/readyz"
	say "API server ready after $((SECONDS - t0)) s"

	# --root-ca-file: without it no kube-root-ca.crt ConfigMap is published and
	# every pod waits forever for its service-account token volume.
	start kube-controller-manager "$k8s_dir/bin/kube-controller-manager" \
		--kubeconfig="$KUBE_DIR/controller-manager.kubeconfig" \
		--authentication-kubeconfig="$KUBE_DIR/controller-manager.kubeconfig" \
		--authorization-kubeconfig="$KUBE_DIR/controller-manager.kubeconfig" \
		--service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
		--use-service-account-credentials=true --cluster-signing-cert-file="$pki/ca.crt" \
		--cluster-signing-key-file="$pki/ca.key" --leader-elect=false \
		--secure-port="$cm_port" --bind-address=127.0.0.1 --controllers='*,-nodeipam'
	start kube-scheduler "$k8s_dir/bin/kube-scheduler" --kubeconfig="$KUBE_DIR/scheduler.kubeconfig" \
		--authentication-kubeconfig="$KUBE_DIR/scheduler.kubeconfig" --authorization-kubeconfig="$KUBE_DIR/scheduler.kubeconfig" \
		--leader-elect=false --secure-port="$sched_port" --bind-address=127.0.0.1
	# --cert-dir: its default is /var/lib/kubelet/pki, whatever --root-dir says.
	start kubelet "$k8s_dir/bin/kubelet" --config="$KUBE_DIR/kubelet-config.yaml" \
		--kubeconfig="$KUBE_DIR/node.kubeconfig" --root-dir="$KUBE_DIR/kubelet" --cert-dir="$KUBE_DIR/kubelet/pki" \
		--hostname-override="$node_name" --node-ip="$ip" -v=1
	start kube-proxy "$k8s_dir/bin/kube-proxy" --config="$KUBE_DIR/kube-proxy-config.yaml"
	wait_for 90 "node $node_name to be Ready" kubelet kctl wait --for=condition=Ready "node/$node_name" --timeout=2s
	say "node Ready after $((SECONDS - t0)) s"
	wait_for 60 "the default ServiceAccount" kube-controller-manager kctl -n default get serviceaccount default
	apply_addons "$resolv"
	rollout kube-system coredns
	rollout local-path-storage local-path-provisioner
	wait_for 30 "CoreDNS to answer through the kube-dns Service" kube-proxy dns_answers
	trap - EXIT
	say "cluster up in $((SECONDS - t0)) s (node $node_name at $ip; logs in $logs)"
}

# ---------------------------------------------------------------- down

# stop NAME...: SIGTERM the recorded processes, SIGKILL what is left after 5 s.
stop() {
	local name pid pids=() i
	for name in "$@"; do
		if pid="$(pid_of "$name")"; then
			kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
		fi
		rm -f "$run/$name.pid" "$run/$name.exe"
	done
	for pid in ${pids[@]+"${pids[@]}"}; do
		for ((i = 0; i < 20; i++)); do
			[ -d "/proc/$pid" ] || break
			sleep 0.25
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
}

# other_kube_running NAME: a process NAME runs on this host that `up` did not
# start (then its host-wide iptables chains and sysctls are not ours to undo).
other_kube_running() {
	local p
	for p in $(pgrep -x "$1" 2>/dev/null); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f "$k8s_dir/bin/$1")" ] || return 0
	done
	return 1
}

# iptables_drop_matching IPT TABLE PATTERN: delete the rules of TABLE whose
# `-S` line matches PATTERN (an extended regex).
iptables_drop_matching() {
	local ipt=$1 table=$2 rule
	"$ipt" -t "$table" -S 2>/dev/null | grep -E -- "$3" | sed 's/^-A /-D /' |
		while read -r rule; do
			# -S quotes comments; eval turns the line back into arguments.
			eval "$ipt -t $table $rule" 2>/dev/null || true
		done || true
}

# iptables_drop_chains IPT TABLE PATTERN: flush, then delete, chains named PATTERN.
iptables_drop_chains() {
	local ipt=$1 table=$2 chains c
	chains="$("$ipt" -t "$table" -S 2>/dev/null | sed -n "s/^-N \($3\)\$/\1/p")" || true
	for c in $chains; do "$ipt" -t "$table" -F "$c" 2>/dev/null || true; done
	for c in $chains; do "$ipt" -t "$table" -X "$c" 2>/dev/null || true; done
}

cleanup_iptables() {
	local ipt table chains
	iptables_drop_matching iptables filter "^-A FORWARD .*--comment \"?$fw_comment\"? "
	# The bridge plugin's masquerade chains (CNI-<hash>, commented with the
	# network name) that a sandbox removed without its CNI DEL left behind.
	chains="$(iptables -t nat -S 2>/dev/null | grep -F "name: \\\"$cni_net\\\"" | grep -oE -- '-j CNI-[0-9a-f]+' | cut -c4- | sort -u)" || true
	iptables_drop_matching iptables nat "^-A POSTROUTING .*name: \\\\\"$cni_net\\\\\""
	for c in $chains; do
		iptables -t nat -F "$c" 2>/dev/null || true
		iptables -t nat -X "$c" 2>/dev/null || true
	done
	# kube-proxy's KUBE-* chains and the kubelet's (KUBE-FIREWALL,
	# KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT), only when no other kubelet or
	# kube-proxy uses them. Not `kube-proxy --cleanup`: that also flushes
	# every IPVS rule on the host and kube-proxy's nftables table.
	if other_kube_running kube-proxy || other_kube_running kubelet; then
		say "another kubelet or kube-proxy runs on this host: leaving the KUBE-* iptables chains alone"
		return 0
	fi
	for ipt in iptables ip6tables; do
		command -v "$ipt" >/dev/null 2>&1 || continue
		for table in nat filter mangle; do
			iptables_drop_matching "$ipt" "$table" '^-A [^K][^ ]* .*-j KUBE-[A-Z0-9-]+'
			iptables_drop_chains "$ipt" "$table" 'KUBE-[A-Z0-9-]*'
		done
	done
}

do_down() {
	local mode=${1:-} pid p m k v c
	stop kube-proxy kubelet
	# Remove every pod sandbox while containerd still runs: that stops the
	# containers, runs each sandbox's CNI DEL (addresses, masquerade rules)
	# and lets the shims exit on their own.
	if alive containerd; then
		timeout 60 "$crictl_dir/crictl" --runtime-endpoint "unix://$sock" rmp -af >>"$logs/crictl.log" 2>&1 || true
	fi
	stop kube-scheduler kube-controller-manager kube-apiserver
	stop etcd containerd
	# Shims of this containerd that are still there (they outlive it); they
	# carry its socket on their command line.
	for p in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $sock( |\$)" 2>/dev/null); do
		kill -KILL "$p" 2>/dev/null || true
	done
	# Mounts under the cluster dir (overlay rootfs, netns files, volume tmpfs,
	# the kubelet's bind mount of its root), deepest first.
	awk -v d="$KUBE_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	if ip link show "$bridge" >/dev/null 2>&1; then ip link del "$bridge" 2>/dev/null || true; fi
	cleanup_iptables
	# cgroups under the kubelet's root, deepest first (rmdir only removes empty ones).
	for p in /sys/fs/cgroup/"$cgroup_root" /sys/fs/cgroup/*/"$cgroup_root"; do
		if [ -d "$p" ]; then find "$p" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
	done
	# The kubelet's fixed host paths.
	if [ -d /var/log/containers ]; then
		find /var/log/containers -maxdepth 1 -type l -lname "$KUBE_DIR/*" -delete 2>/dev/null || true
		[ ! -f "$run/created-var-log-containers" ] || rmdir /var/log/containers 2>/dev/null || true
	fi
	if ! other_kube_running kubelet; then
		rm -f /var/lib/kubelet/device-plugins/kubelet.sock
		[ ! -f "$run/created-var-lib-kubelet" ] || rmdir /var/lib/kubelet/device-plugins /var/lib/kubelet 2>/dev/null || true
		if [ -f "$run/sysctl.orig" ]; then
			while read -r k v; do
				[ "$(cat "/proc/sys/$k" 2>/dev/null)" = "$v" ] || echo "$v" >"/proc/sys/$k" 2>/dev/null || true
			done <"$run/sysctl.orig"
		fi
	fi
	# State goes; logs stay for the post-mortem; the image store stays unless --purge.
	for p in "$KUBE_DIR"/* "$KUBE_DIR"/.[!.]*; do
		[ -e "$p" ] || continue
		case "$p" in
		"$logs" | "$logs.old") ;;
		"$ctrd_root") [ "$mode" != purge ] || rm -rf --one-file-system "$p" ;;
		*) rm -rf --one-file-system "$p" ;;
		esac
	done
}

# ---------------------------------------------------------------- selftest

# selftest_cleanup: stop the port-forward and drop the namespace, also when a
# check failed (the next selftest uses a new namespace anyway).
selftest_ns=""
selftest_pf=""
selftest_cleanup() {
	local rc=$?
	[ -z "$selftest_pf" ] || kill "$selftest_pf" 2>/dev/null || true
	[ -z "$selftest_ns" ] || kctl delete namespace "$selftest_ns" --wait=false >/dev/null 2>&1 || true
	exit "$rc"
}

# pod_replaced NS NAME UID: pod NAME exists with another UID than UID.
pod_replaced() {
	local uid
	uid="$(kctl -n "$1" get pod "$2" -o jsonpath='{.metadata.uid}' 2>/dev/null)" || return 1
	[ -n "$uid" ] && [ "$uid" != "$3" ]
}

do_selftest() {
	local ns web t0=$SECONDS t1 port out uid lines
	# Not `eval "$(…)"`: its status would hide a failure of the script.
	lines="$("$here/images.sh")" || die "images.sh failed to provide the web stand-in"
	eval "$lines"
	web="$ORCHESTRATOR_TESTENV_WEB_IMAGE"
	t1=$SECONDS
	"$0" load-image "$web"
	check() { say "ok: $1 ($((SECONDS - t1)) s)"; t1=$SECONDS; }
	check "$web is in the cluster's containerd"
	ns="kube-selftest-$$"
	trap selftest_cleanup EXIT
	kctl create namespace "$ns" >/dev/null
	selftest_ns=$ns
	wait_for 30 "the default ServiceAccount in $ns" kube-controller-manager kctl -n "$ns" get serviceaccount default
	sed "s|@WEB_IMAGE@|$web|g" "$KUBE_SRC/manifests/selftest.yaml" | kctl -n "$ns" apply -f - >/dev/null
	if ! kctl -n "$ns" wait --for=condition=Ready pod/web --timeout=90s >/dev/null; then
		kctl -n "$ns" describe pod web >&2 || true
		die "pod web (image $web) did not turn Ready"
	fi
	check "pod from $web (imported from Docker) is Ready"
	# shellcheck disable=SC2016 # expanded by the pod's shell
	out="$(kctl -n "$ns" exec web -- sh -c 'echo exec-$((40+2))')"
	[ "$out" = exec-42 ] || die "kubectl exec printed '$out', not exec-42"
	check "kubectl exec"
	port=$((28000 + $$ % 1000))
	# The binary, not the kctl function: $! must be kubectl itself, not a
	# subshell whose kill would leave kubectl running.
	"$kubectl_bin" --kubeconfig "$kubeconfig" -n "$ns" port-forward pod/web "$port:8080" \
		>"$logs/selftest-port-forward.log" 2>&1 9>&- &
	selftest_pf=$!
	wait_for 20 "kubectl port-forward to answer" kube-apiserver curl -sf "http://127.0.0.1:$port/via-port-forward"
	kill "$selftest_pf" 2>/dev/null || true
	wait "$selftest_pf" 2>/dev/null || true
	selftest_pf=""
	check "kubectl port-forward"
	# busybox's `wget -T` segfaults (Debian's 1.35); timeout(1) bounds it instead.
	kctl -n "$ns" exec web -- timeout 10 wget -qO /dev/null "http://web.$ns.svc.$cluster_domain/via-service" ||
		die "http://web.$ns.svc.$cluster_domain/ did not answer from inside a pod (cluster DNS or the Service)"
	check "Service web.$ns.svc.$cluster_domain resolves through CoreDNS and answers"
	if ! kctl -n "$ns" wait --for=condition=Ready pod/db-0 --timeout=120s >/dev/null 2>&1; then
		kctl -n "$ns" get pvc,pods -o wide >&2 || true
		kctl -n "$ns" describe pod db-0 2>/dev/null | sed -n '/^Events:/,$p' >&2 || true
		die "StatefulSet pod db-0 did not turn Ready (its PVC is provisioned by local-path)"
	fi
	check "StatefulSet pod db-0 with a local-path PVC is Ready"
	kctl -n "$ns" exec db-0 -- sh -c "echo survived-$$ >/data/proof.txt"
	uid="$(kctl -n "$ns" get pod db-0 -o jsonpath='{.metadata.uid}')"
	kctl -n "$ns" delete pod db-0 --wait=true >/dev/null
	wait_for 120 "a new pod db-0" kubelet pod_replaced "$ns" db-0 "$uid"
	kctl -n "$ns" wait --for=condition=Ready pod/db-0 --timeout=120s >/dev/null || die "the new pod db-0 did not turn Ready"
	out="$(kctl -n "$ns" exec db-0 -- cat /data/proof.txt)"
	[ "$out" = "survived-$$" ] || die "the PVC's data did not survive the pod: read '$out'"
	check "the PVC's data survived deleting the pod"
	kctl delete namespace "$ns" --timeout=120s >/dev/null || die "namespace $ns was not deleted"
	selftest_ns=""
	check "namespace deleted, volume released"
	say "selftest passed in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- main

# need_root CMD: the cluster side runs as root. A non-root caller with
# password-less sudo re-runs this script through it, keeping its cache root.
need_root() {
	[ "$(id -u)" -eq 0 ] && return 0
	testenv_root_init "kube-cluster.sh $1"
	exec sudo -n env XDG_CACHE_HOME="${XDG_CACHE_HOME:-$HOME/.cache}" PATH="$PATH" \
		${ORCHESTRATOR_TESTENV_KUBE_DIR:+ORCHESTRATOR_TESTENV_KUBE_DIR="$ORCHESTRATOR_TESTENV_KUBE_DIR"} \
		bash "$0" "$@"
}

cmd=${1:-}
case "$cmd" in
up)
	# Fast path without the lock: the common case on every run after the first.
	if cluster_answers; then
		emit
		exit 0
	fi
	# Builds run as the caller (its Go caches); the rest needs root.
	if [ "$(id -u)" -ne 0 ] && ! kube_built; then
		(with_lock kube-cluster 3600 && kube_build)
	fi
	need_root up
	with_lock kube-cluster 3600
	# Another caller may have started it while we waited for the lock.
	if cluster_answers; then
		emit
		exit 0
	fi
	kube_build
	do_up
	emit
	;;
down)
	need_root "$@"
	with_lock kube-cluster 600
	t0=$SECONDS
	do_down "$([ "${2:-}" = --purge ] && echo purge || echo keep-images)"
	say "stopped in $((SECONDS - t0)) s"
	;;
load-image)
	shift
	[ $# -gt 0 ] || die "usage: $0 load-image IMAGE..."
	need_root load-image "$@"
	cluster_answers || die "the cluster is not running; run '$0 up' first"
	with_lock kube-cluster 600
	for img in "$@"; do load_image "$img"; done
	;;
selftest)
	need_root selftest
	"$0" up >/dev/null || die "the cluster did not start"
	do_selftest
	;;
build)
	with_lock kube-cluster 3600
	kube_build
	;;
env)
	cluster_answers || die "the cluster is not running; run '$0 up'"
	emit
	;;
status)
	for c in "${components[@]}"; do
		if pid="$(pid_of "$c")"; then
			printf '%-24s pid %-7s rss %5d MiB\n' "$c" "$pid" "$(($(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status") / 1024))"
		else
			printf '%-24s not running\n' "$c"
		fi
	done
	if cluster_answers; then kctl get nodes,pods -A -o wide; fi
	;;
*)
	sed -n '/^# Usage:/,/^# Pods must/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
	;;
esac
