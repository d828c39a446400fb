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

# check_doctor: nothing above info on a healthy two-node mesh.
check_doctor() {
	local rc=0
	mt doctor doctor -o json || rc=$?
	[[ -s $OUT/doctor.out ]] || fail "meshtrace doctor exited $rc with no output: $(tail -1 "$OUT/doctor.err")"
	want "findings above info" \
		"$(jqr doctor '[.findings[] | select(.severity != "info") | "\(.severity) \(.code) \(.netns)"] | join(", ")')" ""
	want "doctor exit status" "$rc" 0
}

main() {
	command -v meshtrace >/dev/null || fail "no meshtrace binary on PATH"
	meshtrace --version >"$OUT/version.txt" 2>&1 || true
	warm_traffic 1 >"$OUT/warm.log" 2>&1
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
	! grep -q '^FAIL' "$RESULTS"
}

main "$@"
