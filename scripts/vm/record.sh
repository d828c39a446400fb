#!/bin/bash
# Job of `scripts/swarm-vm record`: runs inside the node once the services of
# services.sh answer, and writes into $MT_OUT (the OUTDIR of record):
#
#   VERSIONS                  kernel, docker, iptables, ipvsadm, date
#   node0/                    a bundle (what `meshtrace inspect --from DIR` reads)
#     netns/host/             the root namespace
#     netns/<file>/           one folder per file in /run/docker/netns
#       ip-addr.txt           ip -d addr
#       iptables-save.txt     iptables-save -c
#       ipvsadm.txt           ipvsadm-save -n (empty file: collected, no services)
#       ipvsadm-Ln.txt        ipvsadm -Ln           } only where IPVS has
#       ipvsadm-Ln-stats.txt  ipvsadm -Ln --stats   } services
#       ip-addr-plain.txt     ip addr (host and one web task)
#       conntrack-L.txt       conntrack -L (host, ingress_sbox, web tasks)
#     docker/networks.json    docker network inspect --verbose (all networks)
#     docker/containers.json  docker inspect (running containers)
#     docker/services.json    docker service inspect (all services)
#     docker/tasks.json       docker inspect (all tasks)
#     docker/netns-map.txt    netns file -> what docker says it is
#   pcap/http-8080/, pcap/udp-5353/
#                             one request from the client netns, captured by
#                             tcpdump in every namespace on its path
#
# Sourced (by e2e/vm/check.sh) it only defines its functions.
# shellcheck source=services.sh
source "$MT_VM_DIR/services.sh"

BUNDLE=$MT_OUT/node0

# in_netns NAME CMD...: run CMD in a docker netns ("host" = the root netns).
in_netns() {
	local name=$1
	shift
	if [[ $name == host ]]; then
		"$@"
	else
		nsenter --net="/run/docker/netns/$name" "$@"
	fi
}

# record_netns NAME: the bundle folder of one namespace.
record_netns() {
	local name=$1 dir=$BUNDLE/netns/$1
	mkdir -p "$dir"
	in_netns "$name" ip -d addr >"$dir/ip-addr.txt"
	in_netns "$name" iptables-save -c >"$dir/iptables-save.txt"
	in_netns "$name" ipvsadm-save -n >"$dir/ipvsadm.txt"
	if [[ -s $dir/ipvsadm.txt ]]; then
		in_netns "$name" ipvsadm -Ln >"$dir/ipvsadm-Ln.txt"
		in_netns "$name" ipvsadm -Ln --stats >"$dir/ipvsadm-Ln-stats.txt"
	fi
}

record_docker() {
	local dir=$BUNDLE/docker
	mkdir -p "$dir"
	# shellcheck disable=SC2046 # word splitting of the id lists is intended
	{
		docker network inspect --verbose $(docker network ls -q) >"$dir/networks.json"
		docker inspect $(docker ps -q) >"$dir/containers.json"
		docker service inspect $(docker service ls -q) >"$dir/services.json"
		docker inspect $(docker service ps -q $(service_names)) >"$dir/tasks.json"
	}
	# A readable map from netns file to its owner, for the README and humans.
	{
		local cid
		for cid in $(docker ps -q); do
			docker inspect -f '{{.NetworkSettings.SandboxKey}} container {{.Name}}' "$cid" |
				sed 's|^/[^ ]*/||'
		done
		docker network ls -q --filter driver=overlay | while read -r nid; do
			echo "1-${nid:0:10} overlay $(docker network inspect -f '{{.Name}}' "$nid")"
			echo "lb_${nid:0:9} lb $(docker network inspect -f '{{.Name}}' "$nid")"
		done
		echo "ingress_sbox ingress-sandbox ingress"
	} | while read -r ns what rest; do
		# Only the files that exist (ingress has no lb_ netns: ingress_sbox is its lb).
		[[ ! -e /run/docker/netns/$ns ]] || echo "$ns $what ${rest#/}"
	done | sort >"$dir/netns-map.txt"
}

# record_versions [BY]: $MT_OUT/VERSIONS; BY says what recorded it.
# shellcheck disable=SC2120 # record28.sh passes BY
record_versions() {
	{
		echo "recorded: $(date -u +%Y-%m-%dT%H:%M:%SZ) by ${1:-scripts/swarm-vm record}"
		echo "kernel: $(uname -r) ($(uname -v))"
		echo "debian: $(cat /etc/debian_version)"
		echo "iptables: $(iptables -V)"
		echo "ipvsadm: $(ipvsadm --version)"
		echo "containerd: $(containerd --version)"
		echo "runc: $(runc --version | head -1)"
		echo "docker.io package: $(dpkg-query -W -f '${Version}' docker.io)"
		echo
		docker version
	} >"$MT_OUT/VERSIONS"
}

# record_plain_netns DIR NAME: one namespace as an operator pastes it, with
# the plain commands of the write-ups: `ip addr` (no -d: no link kinds),
# `iptables-save` (no counters), `ipvsadm -Ln` (in every netns; where IPVS
# has no services it prints only its header).
record_plain_netns() {
	local dir=$1/netns/$2
	mkdir -p "$dir"
	in_netns "$2" ip addr >"$dir/ip-addr.txt"
	in_netns "$2" iptables-save >"$dir/iptables-save.txt"
	in_netns "$2" ipvsadm -Ln >"$dir/ipvsadm.txt"
}

# record_plain_bundle DIR: every netns with record_plain_netns, and Docker's
# view with the plain commands (`docker network inspect` without --verbose).
record_plain_bundle() {
	local dir=$1 ns
	record_plain_netns "$dir" host
	for ns in /run/docker/netns/*; do record_plain_netns "$dir" "$(basename "$ns")"; done
	mkdir -p "$dir/docker"
	# shellcheck disable=SC2046 # word splitting of the id lists is intended
	{
		docker network inspect $(docker network ls -q) >"$dir/docker/networks.json"
		docker inspect $(docker ps -q) >"$dir/docker/containers.json"
		docker service inspect $(docker service ls -q) >"$dir/docker/services.json"
	}
}

# --- captures ------------------------------------------------------------------

CAPTURE_PIDS=()

# capture_start DIR NETNS IFACE FILTER [EXTRA...]: tcpdump in the background.
# It is started as a plain command (nsenter execs tcpdump), so $! is
# tcpdump itself and capture_stop can signal it.
capture_start() {
	local dir=$1 ns=$2 ifc=$3 filter=$4 file cmd=()
	shift 4
	mkdir -p "$dir/$ns"
	file=$dir/$ns/$ifc${1:+-sll1}.pcap # EXTRA is only ever "-y LINUX_SLL"
	[[ $ns == host ]] || cmd=(nsenter "--net=/run/docker/netns/$ns")
	cmd+=(tcpdump -Z root -i "$ifc" -U -s 0 -n "$@" -w "$file" "$filter")
	"${cmd[@]}" 2>"$file.log" &
	CAPTURE_PIDS+=($!)
	# Wait until it listens, so the request is not missed.
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q listening "$file.log" 2>/dev/null && return 0
		sleep 0.2
	done
	echo "tcpdump on $ns/$ifc did not start: $(cat "$file.log")" >&2
	return 1
}

# capture_stop: SIGINT every tcpdump (they flush and exit), SIGKILL stragglers.
capture_stop() {
	local pid i
	sleep 1
	kill -INT "${CAPTURE_PIDS[@]}" 2>/dev/null || true
	for pid in "${CAPTURE_PIDS[@]}"; do
		for ((i = 0; i < 25; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait "${CAPTURE_PIDS[@]}" 2>/dev/null || true
	CAPTURE_PIDS=()
}

# links_up NETNS: the interfaces of a netns that are up, except lo.
links_up() {
	in_netns "$1" ip -o link show up | awk -F': ' '{sub(/@.*/, "", $2); if ($2 != "lo") print $2}'
}

# capture_path DIR FILTER NETNS...: tcpdump -i any (cooked v2) in every
# NETNS and on each of their interfaces; -i any in cooked v1 on the host too.
capture_path() {
	local dir=$1 filter=$2 ns ifc
	shift 2
	capture_start "$dir" host any "$filter"
	capture_start "$dir" host any "$filter" -y LINUX_SLL
	capture_start "$dir" host docker_gwbridge "$filter"
	capture_start "$dir" host eth0 "$filter"
	for ns in "$@"; do
		capture_start "$dir" "$ns" any "$filter"
		for ifc in $(links_up "$ns"); do
			capture_start "$dir" "$ns" "$ifc" "$filter"
		done
	done
}

# path_netns SERVICE: the ingress sandbox, the ingress overlay netns and the
# service's task namespaces: every netns a published request crosses here.
path_netns() {
	local nid cid
	nid=$(docker network inspect -f '{{.Id}}' ingress)
	echo ingress_sbox "1-${nid:0:10}"
	for cid in $(service_containers "$1"); do container_netns "$cid"; done
}

record_pcaps() {
	local dir
	dir=$MT_OUT/pcap/http-8080
	# shellcheck disable=SC2046
	capture_path "$dir" "tcp port 8080 or tcp port 80" $(path_netns web)
	{
		echo "request: GET http://$MT_NODE_IP:8080/ from netns $MT_CLIENT_NETNS ($MT_CLIENT_IP)"
		echo "answered by task: $(client_get "$MT_NODE_IP:8080")"
	} >"$dir/request.txt"
	capture_stop

	dir=$MT_OUT/pcap/udp-5353
	# shellcheck disable=SC2046
	capture_path "$dir" "udp port 5353 or udp port 53" $(path_netns dns)
	{
		echo "request: one UDP datagram 'ping' to $MT_NODE_IP:5353 from netns $MT_CLIENT_NETNS"
		echo "answered by task: $(echo ping | ip netns exec "$MT_CLIENT_NETNS" socat -T3 - "UDP4:$MT_NODE_IP:5353")"
	} >"$dir/request.txt"
	capture_stop
	find "$MT_OUT/pcap" -name '*.log' -delete
}

# record_bundle: traffic on every path, then the bundle: every netns and
# Docker's view.
record_bundle() {
	local ns
	warm_traffic 3
	sleep 3 # IPVS folds its stats every 2 s
	record_netns host
	for ns in /run/docker/netns/*; do record_netns "$(basename "$ns")"; done
	record_docker
}

main() {
	local ns cid
	record_versions
	record_bundle

	ip addr >"$BUNDLE/netns/host/ip-addr-plain.txt"
	cid=$(service_containers web | head -1)
	ns=$(container_netns "$cid")
	in_netns "$ns" ip addr >"$BUNDLE/netns/$ns/ip-addr-plain.txt"
	for ns in host ingress_sbox $(for cid in $(service_containers web); do container_netns "$cid"; done); do
		in_netns "$ns" conntrack -L >"$BUNDLE/netns/$ns/conntrack-L.txt" 2>/dev/null || true
	done

	record_pcaps
	echo "recorded $(find "$MT_OUT" -type f | wc -l) files"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	main "$@"
fi
