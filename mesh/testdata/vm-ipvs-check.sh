#!/usr/bin/env bash
# Runs inside the swarm-vm node (a kernel with IPVS, real dockerd):
#   CGO_ENABLED=0 go build -o /tmp/mt ./cmd/meshtrace
#   scripts/swarm-vm run /tmp/mt mesh/testdata/vm-ipvs-check.sh OUTDIR
# Brings a mesh up with real IPVS (--lb auto must pick it) and one with
# --lb iptables, sends TCP and UDP requests through every node, prints the
# IPVS tables, counters and the path, tears down, and records the real
# Docker ingress sandbox and overlay for comparison. Output: the job log.
set -uo pipefail
exec 2>&1
fail=0
check() { if ! "$@"; then echo "FAILED: $*"; fail=1; fi; }
tcp_get() { # PLACE IP:PORT [PATH]
	meshtrace mesh exec --name "$mesh" "$1" -- sh -c "printf 'GET ${3:-/} HTTP/1.0\r\n\r\n' | timeout 5 socat -T3 - TCP4:$2" | sed -n '/^\r*$/,$p' | sed -n 2p
}
udp_ask() { meshtrace mesh exec --name "$mesh" "$1" -- sh -c "echo x | timeout 5 socat -T2 - UDP4:$2" | head -1; }
counters() {
	for place in node0 node0/ingress_sbox; do
		echo "-- iptables-save -c in $place"
		meshtrace mesh exec --name "$mesh" "$place" -- iptables-save -c | grep -v '^#'
		echo "-- conntrack -L in $place"
		meshtrace mesh exec --name "$mesh" "$place" -- conntrack -L 2>&1 | head -20
	done
	meshtrace mesh exec --name "$mesh" node0/ingress_sbox -- ipvsadm -Ln --stats
	meshtrace mesh exec --name "$mesh" node0/ingress_sbox -- ip -s link
	meshtrace mesh exec --name "$mesh" node0/ingress_sbox -- sh -c 'cat /proc/sys/net/ipv4/vs/conntrack /proc/sys/net/ipv4/ip_forward'
}
run_mesh() { # LB
	mesh=v-$1
	echo "=================== mesh $mesh (--lb $1)"
	check meshtrace mesh up --name "$mesh" --lb "$1" --service web:8080:80x3 --service dns:5353:53/udpx2
	check meshtrace mesh status --name "$mesh"
	for ip in 192.168.77.10 192.168.77.11; do
		for i in 1 2 3 4; do echo "tcp client -> $ip: $(tcp_get client $ip:8080)"; done
		for i in 1 2 3; do echo "udp client -> $ip: $(udp_ask client $ip:5353)"; done
	done
	echo "tcp node0 -> 127.0.0.1: $(tcp_get node0 127.0.0.1:8080)"
	echo "tcp node0 -> 192.168.77.10: $(tcp_get node0 192.168.77.10:8080)"
	echo "tcp sandbox -> task 10.0.0.6:8080: $(tcp_get node0/ingress_sbox 10.0.0.6:8080)"
	echo "busybox wget: $(meshtrace mesh exec --name "$mesh" client -- timeout 5 busybox wget -q -O- http://192.168.77.10:8080/ | head -1)"
	counters
	echo "-- path"
	check meshtrace path --mesh "$mesh" --node node1 --port 8080
	check meshtrace path --mesh "$mesh" --node node0 --port 5353 --proto udp
	check meshtrace mesh down --name "$mesh"
}

echo "== kernel $(uname -r); ip_vs: $(grep -c '^ip_vs' /proc/modules) module(s) loaded"
run_mesh auto
run_mesh iptables

echo "== the real Docker ingress, for comparison"
for f in /run/docker/netns/ingress_sbox /run/docker/netns/1-*; do
	echo "-- $f"
	nsenter --net="$f" ip -d addr
	nsenter --net="$f" ip neigh
	nsenter --net="$f" bridge fdb show 2>/dev/null | grep dst | head -20
	nsenter --net="$f" sh -c 'for k in ip_forward vs/conntrack vs/expire_nodest_conn vs/expire_quiescent_template conf/all/rp_filter conf/eth0/rp_filter; do echo "$k=$(cat /proc/sys/net/ipv4/$k 2>/dev/null)"; done'
done
cat /proc/sys/net/ipv4/conf/docker_gwbridge/route_localnet
echo "== result: fail=$fail"
exit $fail
