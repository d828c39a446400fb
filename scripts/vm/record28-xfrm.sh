#!/bin/bash
# Job that records the IPsec state of a Docker 28 encrypted overlay between
# two nodes (fixtures/swarm-vm28-xfrm), run in both nodes of the two-node
# Docker 28 swarm (scripts/swarm-vm with --suite forky and run2, from the VM
# lane's branch h-vm28) with the meshtrace binary under test:
#
#   CGO_ENABLED=0 go build -o /tmp/meshtrace ./cmd/meshtrace
#   scripts/swarm-vm --suite forky run2 /tmp/meshtrace scripts/vm/record28-xfrm.sh OUTDIR
#
# node0 (the manager) creates the overlay "secnet" with --opt encrypted and
# a service "sec" with one task on each node, then sends GETs to sec's VIP
# from its own task until the remote task has answered (IPVS round robin:
# those cross to node1 over ESP). Each node waits until its SAs have carried
# packets, then writes into $MT_OUT:
#
#   VERSIONS                      kernel, Debian, docker, iproute2, … (record_versions)
#   xfrm/ip-xfrm-state.txt        ip xfrm state       keys zeroed (see zero_keys)
#   xfrm/s-ip-xfrm-state.txt      ip -s xfrm state    keys zeroed
#   xfrm/nokeys-ip-xfrm-state.txt    ip xfrm state list nokeys
#   xfrm/s-nokeys-ip-xfrm-state.txt  ip -s xfrm state list nokeys
#   xfrm/ip-xfrm-policy.txt       ip xfrm policy
#   xfrm/s-ip-xfrm-policy.txt     ip -s xfrm policy
#   collect/                      meshtrace collect of the node
#   inspect.json                  meshtrace inspect -o json (the live read, xfrm over netlink)
#   truth.txt                     docker node ls, docker service ps sec, the traffic (node0)
#
# Keys are secrets, even a throwaway VM's: the keys of the plain `ip xfrm
# state` outputs are zeroed digit by digit inside the VM (zero_keys), so
# their format is kept and no key leaves it.
# shellcheck source=/dev/null # record.sh of the VM lane (h-vm28)
source "$MT_VM_DIR/record.sh"
# shellcheck source=/dev/null # services2.sh of the VM lane
source "$MT_VM_DIR/services2.sh"
set -euo pipefail

# zero_keys: every hex digit of a 0x word on an algorithm line becomes 0.
zero_keys() {
	sed -E '/^[[:space:]]+(enc|auth|auth-trunc|aead|comp) /{:a;s/([[:space:]]0x0*)[1-9a-f]/\10/;ta}'
}

# wait_for SECONDS CMD…: until CMD succeeds, at most SECONDS.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 2
	done
}

sas_carried() { ip -s xfrm state list nokeys | grep -Eq '^[[:space:]]+[1-9][0-9]*\(bytes\),'; }
sec_running() { (($(docker service ps -q --filter desired-state=running sec | wc -l) == 2)) && [[ -n $(service_containers sec) ]]; }

node0_traffic() {
	local vip ns answered=""
	docker network create --driver overlay --attachable --opt encrypted secnet >/dev/null
	mt_service --name sec --replicas 2 --replicas-max-per-node 1 --network secnet "$MT_IMAGE" sh -c "$MT_HTTPD"
	wait_for 300 sec_running
	vip=$(service_vip sec secnet)
	ns=$(container_netns "$(service_containers sec | head -1)")
	for _ in $(seq 1 30); do
		answered+="$(nsenter --net="/run/docker/netns/$ns" timeout 5 busybox wget -q -O- "http://$vip/" || echo none) "
		sleep 1
	done
	{
		docker node ls
		docker service ps --no-trunc sec
		echo "GET http://$vip/ x30 from $ns answered by: $answered"
	} >"$MT_OUT/truth.txt"
}

main() {
	record_versions "scripts/vm/record28-xfrm.sh (scripts/swarm-vm --suite forky run2)"
	if ((MT_NODE_INDEX == 0)); then
		node0_traffic
	fi
	wait_for 400 sas_carried
	sleep 3
	mkdir -p "$MT_OUT/xfrm"
	ip xfrm state | zero_keys >"$MT_OUT/xfrm/ip-xfrm-state.txt"
	ip -s xfrm state | zero_keys >"$MT_OUT/xfrm/s-ip-xfrm-state.txt"
	ip xfrm state list nokeys >"$MT_OUT/xfrm/nokeys-ip-xfrm-state.txt"
	ip -s xfrm state list nokeys >"$MT_OUT/xfrm/s-nokeys-ip-xfrm-state.txt"
	ip xfrm policy >"$MT_OUT/xfrm/ip-xfrm-policy.txt"
	ip -s xfrm policy >"$MT_OUT/xfrm/s-ip-xfrm-policy.txt"
	meshtrace inspect -o json >"$MT_OUT/inspect.json"
	meshtrace collect "$MT_OUT/collect"
	if grep -rEq '(enc|auth|aead|auth-trunc) [^ ]+ 0x[0-9a-f]*[1-9a-f]' "$MT_OUT"; then
		echo "a key left ip xfrm state unzeroed" >&2
		return 1
	fi
	echo "recorded $(find "$MT_OUT" -type f | wc -l) files"
}

main "$@"
