#!/usr/bin/env bash
# shell-mesh.sh: the baseline of the mesh benchmark. It builds the same
# routing mesh as `meshtrace mesh up --lb iptables` (one service
# web:8080:80 with REPLICAS tasks over NODES nodes) the way one would by
# hand: one `ip` or `iptables` command per object, namespaces in /run/netns.
#
#   shell-mesh.sh up   NAME NODES REPLICAS
#   shell-mesh.sh down NAME
#
# Namespaces: NAME-lan, NAME-client, NAME-nI-host, NAME-nI-ov (ingress
# overlay), NAME-nI-sbox (ingress sandbox), NAME-tR (task R, on node
# (R-1)%NODES). Same addresses, MACs, MTUs, VXLAN, FDB/neighbour entries,
# sysctls and iptables rules as internal/dockerrules renders.
set -euo pipefail

cmd=${1:?usage: $0 up|down NAME [NODES REPLICAS]}
name=${2:?name}

if [[ $cmd == down ]]; then
	for ns in $(ip netns list | awk '{print $1}' | grep "^${name}-" || true); do
		ip netns del "$ns"
	done
	exit 0
fi
[[ $cmd == up ]] || { echo "unknown command $cmd" >&2; exit 2; }
nodes=${3:?nodes}
replicas=${4:?replicas}
pub=8080 target=80 mark=0x100

mac() { # 02:42 + the IPv4 address bytes
	local IFS=.
	set -- $1
	printf '02:42:%02x:%02x:%02x:%02x' "$1" "$2" "$3" "$4"
}
ipt() { local ns=$1; shift; ip netns exec "$ns" iptables "$@"; }
sbox_ip() { echo "10.0.0.$((2 + $1))"; }
vip="10.0.0.$((2 + nodes))"
task_ip() { echo "10.0.0.$((2 + nodes + $1))"; }
task_node() { echo $((($1 - 1) % nodes)); }
node_ip() { echo "192.168.77.$((10 + $1))"; }

lan=$name-lan client=$name-client
ip netns add "$lan"
ip -n "$lan" link set lo up
ip -n "$lan" link add lanbr type bridge
ip -n "$lan" link set lanbr up
ip netns add "$client"
ip -n "$client" link set lo up
ip -n "$client" link add eth0 address "$(mac 192.168.77.9)" type veth peer name client netns "$lan"
ip -n "$lan" link set client master lanbr up
ip -n "$client" link set eth0 up
ip -n "$client" addr add 192.168.77.9/24 dev eth0

# leg NS IFNAME IP/PREFIX PEER-NS BRIDGE MTU: a veth from NS to a bridge port in PEER-NS.
declare -A ports
leg() {
	local ns=$1 ifname=$2 addr=$3 peer=$4 br=$5 mtu=$6
	local pname
	if [[ $br == br0 ]]; then # the overlay driver's ports: veth0, veth1, ...
		pname="veth${ports[$peer]:-0}"
		ports[$peer]=$((${ports[$peer]:-0} + 1))
	else
		pname="veth$(printf '%s' "$ns$ifname" | sha256sum | cut -c1-7)"
	fi
	ip -n "$ns" link add "$ifname" mtu "$mtu" address "$(mac "${addr%/*}")" type veth peer name "$pname" netns "$peer" mtu "$mtu"
	ip -n "$peer" link set "$pname" master "$br" up
	ip -n "$ns" link set "$ifname" up
	ip -n "$ns" addr add "$addr" dev "$ifname"
}

for ((i = 0; i < nodes; i++)); do
	host=$name-n$i-host ov=$name-n$i-ov sbox=$name-n$i-sbox nip=$(node_ip $i)
	for ns in "$host" "$ov" "$sbox"; do
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	done
	# host: underlay leg, docker_gwbridge, sysctls, DOCKER-INGRESS
	ip -n "$host" link add eth0 address "$(mac "$nip")" type veth peer name "lan-node$i" netns "$lan"
	ip -n "$lan" link set "lan-node$i" master lanbr up
	ip -n "$host" link set eth0 up
	ip -n "$host" addr add "$nip/24" dev eth0
	ip -n "$host" link add docker_gwbridge type bridge
	ip -n "$host" link set docker_gwbridge up
	ip -n "$host" addr add 172.18.0.1/16 dev docker_gwbridge
	ip netns exec "$host" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.docker_gwbridge.route_localnet=1
	ipt "$host" -t nat -N DOCKER-INGRESS
	ipt "$host" -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER-INGRESS
	ipt "$host" -t nat -A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER-INGRESS
	ipt "$host" -t nat -A POSTROUTING -o docker_gwbridge -m addrtype --src-type LOCAL -j MASQUERADE
	ipt "$host" -t nat -A POSTROUTING -s 172.18.0.0/16 ! -o docker_gwbridge -j MASQUERADE
	ipt "$host" -t nat -A DOCKER-INGRESS -p tcp -m tcp --dport $pub -j DNAT --to-destination 172.18.0.2:$pub
	ipt "$host" -t nat -A DOCKER-INGRESS -j RETURN
	ipt "$host" -N DOCKER-INGRESS
	ipt "$host" -N DOCKER-USER
	ipt "$host" -A FORWARD -j DOCKER-USER
	ipt "$host" -A FORWARD -j DOCKER-INGRESS
	ipt "$host" -A FORWARD -i docker_gwbridge -o docker_gwbridge -j DROP
	ipt "$host" -A FORWARD -i docker_gwbridge ! -o docker_gwbridge -j ACCEPT
	ipt "$host" -A FORWARD -o docker_gwbridge -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
	ipt "$host" -A DOCKER-INGRESS -p tcp -m tcp --dport $pub -j ACCEPT
	ipt "$host" -A DOCKER-INGRESS -p tcp -m tcp --sport $pub -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
	ipt "$host" -A DOCKER-INGRESS -j RETURN
	ipt "$host" -A DOCKER-USER -j RETURN

	# ingress overlay: br0 + the VTEP made in the host netns and moved in
	ip -n "$ov" link add br0 mtu 1450 type bridge
	ip -n "$ov" link set br0 up
	ip -n "$ov" addr add 10.0.0.1/24 dev br0
	ip -n "$host" link add vx-001000-bench mtu 1450 type vxlan id 4096 dstport 4789 proxy l2miss l3miss
	ip -n "$host" link set vx-001000-bench netns "$ov"
	ip -n "$ov" link set vx-001000-bench name vxlan0
	ip -n "$ov" link set vxlan0 master br0 up

	# ingress sandbox
	sip=$(sbox_ip $i)
	leg "$sbox" eth0 "$sip/24" "$ov" br0 1450
	leg "$sbox" eth1 172.18.0.2/16 "$host" docker_gwbridge 1500
	ip -n "$sbox" addr add "$vip/32" dev eth0
	ip -n "$sbox" route add default via 172.18.0.1 dev eth1
	ip netns exec "$sbox" sysctl -qw net.ipv4.ip_forward=1
	ipt "$sbox" -t mangle -A PREROUTING -p tcp -m tcp --dport $pub -j MARK --set-xmark $mark/0xffffffff
	ipt "$sbox" -t mangle -A INPUT -d "$vip/32" -j MARK --set-xmark $mark/0xffffffff
	for chain in PREROUTING OUTPUT; do
		for ((r = 1; r <= replicas; r++)); do
			stat=() rest=$((replicas - r + 1))
			((rest > 1)) && stat=(-m statistic --mode nth --every $rest --packet 0)
			ipt "$sbox" -t nat -A $chain -m mark --mark $mark "${stat[@]}" -m comment --comment "meshtrace: emulates IPVS FWM" -j DNAT --to-destination "$(task_ip $r)"
		done
	done
	ipt "$sbox" -t nat -A POSTROUTING -d 10.0.0.0/24 -m conntrack --ctstate DNAT -m comment --comment "meshtrace: emulates IPVS FWM" -j SNAT --to-source "$sip"
done

# the overlay driver's static entries for every remote endpoint
for ((i = 0; i < nodes; i++)); do
	ov=$name-n$i-ov
	eps=()
	for ((j = 0; j < nodes; j++)); do eps+=("$j:$(sbox_ip $j)"); done
	for ((r = 1; r <= replicas; r++)); do eps+=("$(task_node $r):$(task_ip $r)"); done
	for ep in "${eps[@]}"; do
		n=${ep%%:*} addr=${ep#*:}
		((n == i)) && continue
		ip -n "$ov" neigh add "$addr" lladdr "$(mac "$addr")" dev vxlan0 nud permanent
		bridge -n "$ov" fdb add "$(mac "$addr")" dev vxlan0 dst "$(node_ip "$n")" self permanent
	done
done

declare -A gw
for ((r = 1; r <= replicas; r++)); do
	n=$(task_node $r) t=$name-t$r tip=$(task_ip $r)
	gw[$n]=$((${gw[$n]:-2} + 1))
	ip netns add "$t"
	ip -n "$t" link set lo up
	leg "$t" eth0 "$tip/24" "$name-n$n-ov" br0 1450
	leg "$t" eth1 "172.18.0.${gw[$n]}/16" "$name-n$n-host" docker_gwbridge 1500
	ip -n "$t" route add default via 172.18.0.1 dev eth1
	ipt "$t" -t nat -A PREROUTING -d "$tip/32" -p tcp -m tcp --dport $pub -j REDIRECT --to-ports $target
	ipt "$t" -A INPUT -d "$tip/32" -p tcp -m tcp --dport $target -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT
	for p in sctp udp tcp; do ipt "$t" -A INPUT -d "$tip/32" -p $p -j DROP; done
	ipt "$t" -A OUTPUT -s "$tip/32" -p tcp -m tcp --sport $target -m conntrack --ctstate ESTABLISHED -j ACCEPT
	for p in sctp udp tcp; do ipt "$t" -A OUTPUT -s "$tip/32" -p $p -j DROP; done
	# Docker's embedded DNS, as dockerd's setupIPTable writes it (its
	# ports are random; meshtrace's come from a hash, these from R).
	tcp=$((40000 + 2 * r)) udp=$((40001 + 2 * r))
	ipt "$t" -t nat -N DOCKER_OUTPUT
	ipt "$t" -t nat -I OUTPUT -d 127.0.0.11 -j DOCKER_OUTPUT
	ipt "$t" -t nat -N DOCKER_POSTROUTING
	ipt "$t" -t nat -I POSTROUTING -d 127.0.0.11 -j DOCKER_POSTROUTING
	ipt "$t" -t nat -I DOCKER_OUTPUT -d 127.0.0.11 -p udp --dport 53 -j DNAT --to-destination 127.0.0.11:$udp
	ipt "$t" -t nat -I DOCKER_POSTROUTING -s 127.0.0.11 -p udp --sport $udp -j SNAT --to-source :53
	ipt "$t" -t nat -I DOCKER_OUTPUT -d 127.0.0.11 -p tcp --dport 53 -j DNAT --to-destination 127.0.0.11:$tcp
	ipt "$t" -t nat -I DOCKER_POSTROUTING -s 127.0.0.11 -p tcp --sport $tcp -j SNAT --to-source :53
done
