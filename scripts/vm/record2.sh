#!/bin/bash
# Job that records the two-node swarm of `scripts/swarm-vm run2` (see
# fixtures/swarm-vm2/README.md):
#
#   scripts/swarm-vm run2 MESHTRACE scripts/vm/record2.sh OUTDIR
#
# In node0 (the manager) it writes OUTDIR/node0/ like record.sh: VERSIONS and
# a bundle in node0/ (every netns's ip -d addr, iptables-save -c, ipvsadm;
# Docker's networks, containers, services and tasks), plus, in each overlay
# netns, the neighbour and FDB tables (ip-neigh.txt: ip neigh show;
# bridge-fdb.txt: bridge fdb show) that say which node (VTEP) a remote task is
# behind. node1 records nothing.
# shellcheck source=record.sh
source "$MT_VM_DIR/record.sh"
# shellcheck source=services2.sh
source "$MT_VM_DIR/services2.sh"

main2() {
	local ns
	((MT_NODE_INDEX == 0)) || return 0
	record_versions
	record_bundle
	for ns in /run/docker/netns/1-*; do
		ns=$(basename "$ns")
		in_netns "$ns" ip neigh show >"$BUNDLE/netns/$ns/ip-neigh.txt"
		in_netns "$ns" bridge fdb show >"$BUNDLE/netns/$ns/bridge-fdb.txt"
	done
	docker node ls >"$MT_OUT/nodes.txt"
	docker service ps --no-trunc far mix >>"$MT_OUT/nodes.txt"
	echo "recorded $(find "$MT_OUT" -type f | wc -l) files"
}

set -euo pipefail
main2 "$@"
