# shellcheck shell=bash
# The services of the Docker 28 node (`scripts/swarm-vm --suite forky`),
# sourced by node-init and by the job scripts instead of services.sh, whose
# helpers it keeps (it sources services.sh and replaces the set of services):
#
#   web     published 8080:80/tcp, 2 replicas (busybox httpd)
#   api     on the overlay "appnet", VIP mode, 1 replica
#   sapi    on the ENCRYPTED overlay "secnet" (--opt encrypted), VIP, 1 replica
#   rr      on appnet and secnet, --endpoint-mode dnsrr (no VIP, no IPVS),
#           2 replicas
#   caller  on appnet only, calls http://api/ by name every 30 s: the
#           east-west client. It reaches api's VIP (same overlay) but not
#           sapi's: it has no leg in secnet, so a packet to that VIP takes the
#           default route through docker_gwbridge and is masqueraded by the
#           host to nowhere (never answered).
#
# Requests between tasks are made from the node with nsenter into the
# caller's netns (the node's busybox wget, the task's routes and rules), not
# with `docker exec`, which takes over 10 s under TCG.
# shellcheck disable=SC2034 # the MT_* variables are for the scripts sourcing this
# shellcheck source=services.sh
source "$MT_VM_DIR/services.sh"

MT_SERVICES="web:2 api:1 sapi:1 rr:2 caller:1"

create_services() {
	docker network create --driver overlay --attachable appnet >/dev/null || return 1
	docker network create --driver overlay --attachable --opt encrypted secnet >/dev/null || return 1
	mt_service --name web --replicas 2 --publish published=8080,target=80 \
		"$MT_IMAGE" sh -c "$MT_HTTPD" || return 1
	mt_service --name api --replicas 1 --network appnet \
		"$MT_IMAGE" sh -c "$MT_HTTPD" || return 1
	mt_service --name sapi --replicas 1 --network secnet \
		"$MT_IMAGE" sh -c "$MT_HTTPD" || return 1
	mt_service --name rr --replicas 2 --network appnet --network secnet --endpoint-mode dnsrr \
		"$MT_IMAGE" sh -c "$MT_HTTPD" || return 1
	mt_service --name caller --replicas 1 --network appnet \
		"$MT_IMAGE" sh -c 'while :; do timeout 5 wget -q -O- http://api/; sleep 30; done' || return 1
}

# task_netns SERVICE: the netns file of the service's first task on this node.
task_netns() {
	local cid
	cid=$(service_containers "$1" | head -1)
	[[ -n $cid ]] && container_netns "$cid"
}

# in_task SERVICE CMD...: CMD in the network namespace of SERVICE's first task.
in_task() {
	local ns
	ns=$(task_netns "$1") || return 1
	shift
	nsenter --net="/run/docker/netns/$ns" "$@"
}

# ew_get FROM SERVICE NETWORK: GET http://<SERVICE's VIP on NETWORK>/ from
# FROM's first task; prints the answering task's hostname.
ew_get() {
	local vip
	vip=$(service_vip "$2" "$3") && [[ -n $vip ]] || return 1
	in_task "$1" timeout 5 busybox wget -q -O- "http://$vip/"
}

# east_west NAME: GET http://NAME's VIP on appnet/ from the caller.
east_west() { ew_get caller "$1" appnet; }

# task_dns FROM NAME: the addresses Docker's embedded DNS (127.0.0.11 in
# FROM's task) gives for NAME, one a line, sorted.
task_dns() {
	in_task "$1" timeout 5 busybox nslookup "$2" 127.0.0.11 2>/dev/null |
		awk '/^Name:/ {n = 1; next} n && /^Address/ {sub(/^Address( [0-9]+)?:[ \t]*/, ""); print $1}' | sort
}

mesh_answers() {
	http_get "$MT_NODE_IP:8080" && ew_get caller api appnet && ew_get rr sapi secnet
}

mesh_requests() {
	http_get "$MT_NODE_IP:8080"
	ew_get caller api appnet
	ew_get rr sapi secnet
}

warm_requests() {
	printf '%s\n' "http_get 127.0.0.1:8080" "http_get $MT_NODE_IP:8080" \
		"client_get $MT_NODE_IP:8080" "ew_get caller api appnet" "ew_get rr sapi secnet" \
		"task_dns caller rr"
}
