# shellcheck shell=bash
# Ground truth for the swarm-vm e2e checks: what dockerd and the kernel of the
# node say right now, computed at run time (never copied from an earlier run).
# Sourced by check.sh inside the node; needs docker, jq, iptables-save,
# ipvsadm-save and the helpers of scripts/vm/services.sh.

# ns_exec NETNS CMD...: run CMD in a docker netns ("host" = the root netns).
ns_exec() {
	local ns=$1
	shift
	if [[ $ns == host ]]; then "$@"; else nsenter --net="/run/docker/netns/$ns" "$@"; fi
}

# MT_IS_MANAGER: whether this node manages the swarm (only a manager answers
# `docker service` and `docker node`; a worker's truth comes from the network
# DB that `docker network inspect --verbose` shows).
MT_IS_MANAGER=${MT_IS_MANAGER:-$(docker info -f '{{.Swarm.ControlAvailable}}' 2>/dev/null)}

# docker_published: "proto published target service" per ingress-published port.
docker_published() {
	if [[ $MT_IS_MANAGER != true ]]; then
		worker_published
		return
	fi
	# shellcheck disable=SC2046
	docker service inspect $(docker service ls -q) | jq -r '.[] | .Spec.Name as $s
		| (.Endpoint.Ports // [])[] | select(.PublishMode == "ingress")
		| "\(.Protocol) \(.PublishedPort) \(.TargetPort) \($s)"' | sort
}

# worker_published: docker_published on a worker: the network DB's
# "Target: T, Publish: P" of each service on ingress (it names no protocol),
# the protocol from the host's DOCKER-INGRESS DNAT rule for P.
worker_published() {
	local p t s proto
	docker network inspect --verbose ingress | jq -r '.[0].Services // {} | to_entries[]
		| .key as $s | (.value.Ports // [])[]
		| capture("Target: (?<t>[0-9]+), Publish: (?<p>[0-9]+)") | "\(.p) \(.t) \($s)"' |
		while read -r p t s; do
			for proto in $(iptables-save -t nat | awk -v p="$p" '$2 == "DOCKER-INGRESS" && $0 ~ "--dport " p " " {
				for (i = 1; i < NF; i++) if ($i == "-p") print $(i + 1) }' | sort -u); do
				echo "$proto $p $t $s"
			done
		done | sort
}

# published_field PROTO PORT FIELD: target or service of a published port.
published_field() {
	docker_published | awk -v p="$1" -v n="$2" -v f="$3" \
		'$1 == p && $2 == n { print (f == "target" ? $3 : $4) }'
}

# sbox_ip NETWORK: the ingress sandbox's address on NETWORK (ingress or docker_gwbridge).
sbox_ip() {
	docker network inspect "$1" |
		jq -r '.[0].Containers["ingress-sbox"].IPv4Address // empty | sub("/.*"; "")'
}

# network_id NAME
network_id() { docker network inspect -f '{{.Id}}' "$1"; }

# task_ips SERVICE NETWORK: the addresses of the service's running tasks on NETWORK.
task_ips() {
	local tasks
	if [[ $MT_IS_MANAGER != true ]]; then
		network_tasks "$2" | awk -v s="$1" '$1 == s {print $2}' | sort
		return
	fi
	tasks=$(docker service ps -q --filter desired-state=running "$1") || return 1
	# shellcheck disable=SC2086
	docker inspect $tasks | jq -r --arg n "$2" '.[] | select(.Status.State == "running")
		| .NetworksAttachments[] | select(.Network.Spec.Name == $n)
		| .Addresses[] | sub("/.*"; "")' | sort
}

# netns_of_ip SERVICE NETWORK IP: the netns file name of the task holding IP.
netns_of_ip() {
	local cids
	cids=$(service_containers "$1")
	[[ -n $cids ]] || return 0 # no task of it on this node
	# shellcheck disable=SC2086
	docker inspect $cids | jq -r --arg n "$2" --arg ip "$3" '.[]
		| select(.NetworkSettings.Networks[$n].IPAddress == $ip)
		| .NetworkSettings.SandboxKey | sub(".*/"; "")'
}

# mangle_mark NETNS CHAIN PATTERN...: the decimal mark set by the first rule
# of mangle CHAIN whose text contains every PATTERN.
mangle_mark() {
	local ns=$1 chain=$2 rules hex pat
	shift 2
	rules=$(ns_exec "$ns" iptables-save -t mangle | grep -- "^-A $chain ")
	for pat in "$@"; do rules=$(grep -F -- "$pat" <<<"$rules"); done
	hex=$(head -1 <<<"$rules" | sed -nE 's/.*--set-x?mark (0x[0-9a-fA-F]+).*/\1/p')
	[[ -n $hex ]] && printf '%d\n' "$hex"
}

# ingress_fwmark PROTO PORT: the mark the ingress sandbox puts on a published port.
ingress_fwmark() { mangle_mark ingress_sbox PREROUTING "-p $1 " "--dport $2 "; }

# ipvs_reals NETNS FWMARK: the real servers' addresses of an IPVS fwmark service.
ipvs_reals() {
	ns_exec "$1" ipvsadm-save -n | awk -v f="$2" '$1 == "-a" && $2 == "-f" && $3 == f {
		for (i = 4; i < NF; i++) if ($i == "-r") { split($(i + 1), a, ":"); print a[1] } }' | sort
}

# ipvs_netns_with FWMARK NETNS...: the first NETNS whose IPVS has a service FWMARK.
ipvs_netns_with() {
	local fw=$1 ns
	shift
	for ns in "$@"; do
		ns_exec "$ns" ipvsadm-save -n | grep -q -- "^-A -f $fw " && { echo "$ns"; return 0; }
	done
	return 1
}

# docker_netns_names: the files of /run/docker/netns, but those that are the
# host's own netns ("default", which dockerd makes for a --network host
# container such as swarm collect's tasks): that one is "host".
docker_netns_names() {
	local host f
	host=$(stat -L -c %i /proc/self/ns/net) # the job runs in the host netns
	for f in /run/docker/netns/*; do
		[[ -e $f && $(stat -L -c %i "$f") != "$host" ]] || continue
		basename "$f"
	done
}

# network_tasks NETWORK: "service address node-address" of every task on
# NETWORK that dockerd's network DB knows, on every node (--verbose).
network_tasks() {
	docker network inspect --verbose "$1" | jq -r '.[0].Services // {} | to_entries[]
		| select(.key != "") | .key as $s | .value.Tasks[]
		| "\($s) \(.EndpointIP) \(.Info["Host IP"] // "")"'
}

# task_host SERVICE NETWORK IP: the address of the node whose task of
# SERVICE holds IP on NETWORK, as the network DB says.
task_host() {
	network_tasks "$2" | awk -v s="$1" -v ip="$3" '$1 == s && $2 == ip {print $3}'
}

# task_slot SERVICE NETWORK IP: the name of the task of SERVICE holding IP
# on NETWORK (service.slot, the task ID dropped), as the network DB says.
task_slot() {
	docker network inspect --verbose "$2" | jq -r --arg s "$1" --arg ip "$3" '.[0].Services[$s].Tasks[]?
		| select(.EndpointIP == $ip) | .Name | split(".") | .[0:-1] | join(".")'
}

# task_node_addr SERVICE NETWORK IP: the same as the manager's scheduler says:
# the running task holding IP, its node, that node's address.
task_node_addr() {
	local node
	# shellcheck disable=SC2046
	node=$(docker inspect $(docker service ps -q --filter desired-state=running "$1") |
		jq -r --arg n "$2" --arg ip "$3" '.[] | select(.Status.State == "running")
		| select(any(.NetworksAttachments[] | select(.Network.Spec.Name == $n) | .Addresses[];
			sub("/.*"; "") == $ip)) | .NodeID')
	[[ -n $node ]] && docker node inspect -f '{{.Status.Addr}}' "$node"
}

# overlay_netns NETWORK: the netns file of an overlay network (1-<id>).
overlay_netns() {
	local id
	id=$(network_id "$1") && echo "1-${id:0:10}"
}

# vxlan_dev NETNS: the VXLAN device in an overlay netns.
vxlan_dev() {
	ns_exec "$1" ip -o link show type vxlan | awk -F': ' '{sub(/@.*/, "", $2); print $2; exit}'
}
