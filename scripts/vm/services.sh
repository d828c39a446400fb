# shellcheck shell=bash
# The swarm-vm node's services and helpers, sourced by node-init and by the
# job scripts that run inside the node (record.sh, e2e/vm/check.sh):
#
#   web     published 8080:80/tcp, 3 replicas (busybox httpd)
#   one     published 8081:80/tcp, 1 replica
#   dns     published 5353:53/udp, 1 replica (socat answering each datagram
#           with the task's hostname)
#   api     on the user overlay "appnet", VIP mode, 2 replicas
#   caller  on appnet, calls http://api/ by name every 30 s (east-west VIP)
#   rr      on appnet, --endpoint-mode dnsrr, 2 replicas
#
# Every httpd serves its task's hostname, so a response names the backend.
# shellcheck disable=SC2034 # the MT_* variables are for the scripts sourcing this

MT_IMAGE=mt-busybox:latest
MT_NODE_IP=${MT_NODE_IP:-192.0.2.10} # set by node-init (run2: node1 is .11)
MT_CLIENT_NETNS=mtclient # on the node's LAN, behind its eth0 (see node-init)
MT_CLIENT_IP=192.0.2.100
# name:replicas of every service, for wait_services.
MT_SERVICES="web:3 one:1 dns:1 api:2 caller:1 rr:2"
MT_HTTPD='hostname >/www/index.html && exec httpd -f -p 80 -h /www'

mt_service() {
	docker service create --detach --quiet --no-resolve-image "$@" >/dev/null
}

create_services() {
	docker network create --driver overlay --attachable appnet >/dev/null || return 1
	mt_service --name web --replicas 3 --publish published=8080,target=80 \
		"$MT_IMAGE" sh -c "$MT_HTTPD" || return 1
	mt_service --name one --replicas 1 --publish published=8081,target=80 \
		"$MT_IMAGE" sh -c "$MT_HTTPD" || return 1
	mt_service --name dns --replicas 1 --publish published=5353,target=53,protocol=udp \
		"$MT_IMAGE" socat -T2 UDP4-RECVFROM:53,fork SYSTEM:hostname || return 1
	mt_service --name api --replicas 2 --network appnet \
		"$MT_IMAGE" sh -c "$MT_HTTPD" || return 1
	mt_service --name caller --replicas 1 --network appnet \
		"$MT_IMAGE" sh -c 'while :; do timeout 5 wget -q -O- http://api/; sleep 30; done' || return 1
	mt_service --name rr --replicas 2 --network appnet --endpoint-mode dnsrr \
		"$MT_IMAGE" sh -c "$MT_HTTPD" || return 1
}

# services_converged: every service runs its replicas.
services_converged() {
	local want got name n
	got=$(docker service ls --format '{{.Name}} {{.Replicas}}') || return 1
	for want in $MT_SERVICES; do
		name=${want%%:*} n=${want##*:}
		# "2/2", or "2/2 (max 1 per node)" with --replicas-max-per-node
		grep -qE "^$name $n/$n( |\$)" <<<"$got" || return 1
	done
}

# wait_services SECONDS: replicas running and every path answering (the
# routing mesh is programmed a little after the tasks start).
wait_services() {
	local limit=$1 start=$SECONDS
	until services_converged && mesh_answers; do
		if ((SECONDS - start >= limit)); then
			mesh_diag
			return 1
		fi
		sleep 1
	done
	echo "services ready after $((SECONDS - start))s"
}

# mesh_diag: what a human needs to see when the mesh does not answer.
mesh_diag() {
	local ns
	set -x
	docker service ls
	# shellcheck disable=SC2046
	docker service ps --no-trunc $(service_names)
	mesh_requests
	ls -l /run/docker/netns
	ip -d addr
	iptables-save -c
	for ns in /run/docker/netns/*; do
		nsenter --net="$ns" ip addr
		nsenter --net="$ns" iptables-save -c
		nsenter --net="$ns" ipvsadm -Ln
	done
	set +x
}

mesh_answers() {
	http_get "$MT_NODE_IP:8080" && http_get "$MT_NODE_IP:8081" &&
		udp_ask "$MT_NODE_IP" 5353 && east_west api
}

# mesh_requests: every request of mesh_answers, each tried (for mesh_diag).
mesh_requests() {
	http_get "$MT_NODE_IP:8080"
	http_get "$MT_NODE_IP:8081"
	udp_ask "$MT_NODE_IP" 5353
	east_west api
}

# service_names: the names in MT_SERVICES.
service_names() { for s in $MT_SERVICES; do echo "${s%%:*}"; done; }

# Note: Debian bookworm's busybox wget segfaults on a failed connection when
# given -T; `timeout` bounds it instead.

# http_get HOST:PORT: one GET from the node itself; prints the backend's hostname.
http_get() { timeout 5 busybox wget -q -O- "http://$1/"; }

# client_get HOST:PORT: one GET from the client netns (arrives through PREROUTING).
client_get() { ip netns exec "$MT_CLIENT_NETNS" timeout 5 busybox wget -q -O- "http://$1/"; }

# udp_ask HOST PORT: one datagram; prints the answering task's hostname.
udp_ask() { echo ping | socat -T3 - "UDP4:$1:$2" | grep .; }

# east_west NAME: GET http://NAME/ from inside the caller task (embedded DNS + VIP).
east_west() { docker exec "$(service_containers caller | head -1)" timeout 5 wget -q -O- "http://$1/"; }

# service_containers NAME: ids of the running containers of a service on this node.
service_containers() {
	docker ps -q --no-trunc --filter "label=com.docker.swarm.service.name=$1"
}

# container_netns ID: the name of the container's file in /run/docker/netns.
container_netns() {
	basename "$(docker inspect -f '{{.NetworkSettings.SandboxKey}}' "$1")"
}

# service_vip SERVICE NETWORK: the service's VIP (without /len) on a network.
service_vip() {
	local netid
	netid=$(docker network inspect -f '{{.Id}}' "$2") || return 1
	docker service inspect "$1" |
		jq -r --arg n "$netid" '.[0].Endpoint.VirtualIPs[] | select(.NetworkID == $n) | .Addr | sub("/.*"; "")'
}

# warm_traffic N: N requests on every path, so counters are not zero.
# A failed request is reported, not fatal: the recording should still happen.
warm_traffic() {
	local n=$1 i req failed=0 reqs
	mapfile -t reqs < <(warm_requests)
	for ((i = 0; i < n; i++)); do
		for req in "${reqs[@]}"; do
			$req >/dev/null 2>&1 || { echo "warm_traffic: $req failed" >&2; failed=$((failed + 1)); }
		done
	done
	echo "warm_traffic: $((n * ${#reqs[@]} - failed)) requests answered, $failed failed"
}

# warm_requests: the requests of warm_traffic, one a line.
warm_requests() {
	printf '%s\n' "http_get 127.0.0.1:8080" "http_get $MT_NODE_IP:8080" \
		"client_get $MT_NODE_IP:8080" "http_get $MT_NODE_IP:8081" \
		"udp_ask $MT_NODE_IP 5353" "east_west api" "east_west rr"
}
