#!/bin/bash
# The two-node swarm-vm e2e checks, run INSIDE both nodes by
# `scripts/swarm-vm run2` (see e2e/vm/run2.sh); MT_NODE_INDEX says which.
# The harness and most checks are check.sh's: every answer of meshtrace is
# compared with what dockerd and the kernel of this node say right now
# (truth.sh). Here the routing mesh crosses real VXLAN: node0's published
# ports are served by tasks on node1 (services2.sh), so the path must show
# remote backends whose VTEP is the node the network DB and the scheduler
# put their task on, and a probe must leave through the overlay's VXLAN
# device and come back the same way.
#
# Writes $MT_OUT/results.txt and $MT_OUT/outputs/ like check.sh.
# shellcheck disable=SC2016 # jq filters are single-quoted on purpose
set -uo pipefail
# shellcheck source=check.sh
source "$MT_JOB_DIR/check.sh"
# check.sh brought services.sh's one-node service set: take the two-node one.
# shellcheck source=../../scripts/vm/services2.sh
source "$MT_VM_DIR/services2.sh"

# check_swarm: the scenario the other checks rest on, as the manager says:
# two Ready nodes, far's task on a worker, mix's two tasks on two nodes.
check_swarm() {
	local ready far mix
	docker node ls
	ready=$(docker node ls --format '{{.Status}}' | grep -cx Ready)
	want "Ready nodes" "$ready" 2
	far=$(docker service ps --filter desired-state=running --format '{{.Node}}' far)
	[[ -n $far && $far != "$(hostname)" ]] || fail "far's task runs on '$far', not on a worker"
	mix=$(docker service ps --filter desired-state=running --format '{{.Node}}' mix | sort -u | wc -l)
	want "nodes running mix" "$mix" 2
	# The ingress network's peers are the nodes' addresses.
	want_set "ingress peers" "$(docker network inspect --verbose ingress | jq -r '.[0].Peers[].IP')" \
		"$(docker node ls -q | xargs docker node inspect -f '{{.Status.Addr}}')"
}

# check_trace_peer PROTO PORT: `trace` on node0 while node1, an outside
# client on node0's LAN, asks node0's PORT: the request arrives on node0's
# uplink, goes through PREROUTING and IPVS and back out of the same uplink,
# encapsulated, to the task on node1.
check_trace_peer() {
	trace_from "trace-peer-$1-$2" "$1" "$2" "$MT_WORKER_IP" peer_send
	rm -f "$MT_XCHG/send-$1-$2"
	want "first sighting: in on host/eth0, not encapsulated" \
		"$(jqr "trace-peer-$1-$2" "$FLOW0"'.hops[0] | "\(.netns)/\(.ifname) \(.dir) \(.encap // "plain")"')" "host/eth0 in plain"
}

# peer_send PROTO PORT: ask node1 (serve_peer) for requests to node0's PORT.
peer_send() { touch "$MT_XCHG/send-$1-$2"; }

# serve_peer: node1, once its checks are done: while node0 runs its job,
# send each request node0 asks for (a send-PROTO-PORT file on the exchange
# share, TCP only here) every 2 s.
serve_peer() {
	local start=$SECONDS f port n=0
	while ((SECONDS - start < 300)) && [[ ! -f $MT_XCHG/done-0 ]]; do
		for f in "$MT_XCHG"/send-tcp-*; do
			[[ -f $f ]] || continue
			port=${f##*-}
			http_get "$MT_MANAGER_IP:$port" >/dev/null && n=$((n + 1))
		done
		sleep 2
	done
	echo "serve_peer: $n requests to node0 answered"
}

main() {
	checks_begin
	if [[ $MT_NODE_INDEX == 0 ]]; then
		check swarm check_swarm
	fi
	check inspect check_inspect
	check docker-meta check_docker_meta
	check path-tcp-8080 check_path tcp 8080
	check path-tcp-8081 check_path tcp 8081
	if [[ $MT_NODE_INDEX == 0 ]]; then
		check trace-tcp-8080 check_trace tcp 8080
	fi
	check doctor check_doctor
	if [[ $MT_NODE_INDEX == 0 ]]; then
		check trace-peer-tcp-8080 check_trace_peer tcp 8080
	else
		serve_peer >"$OUT/serve-peer.log" 2>&1
	fi
	! grep -q '^FAIL' "$RESULTS"
}

# Sourced (by check28-2.sh) it only defines its checks.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
