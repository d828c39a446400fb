# shellcheck shell=bash
# The services of the two-node swarm of `scripts/swarm-vm run2`, sourced by
# node-init and by the job scripts instead of services.sh, whose helpers it
# keeps (it sources services.sh and replaces the set of services):
#
#   far   published 8080:80/tcp, 1 replica, on workers only (node1): a request
#         to node0's port crosses the ingress overlay's VXLAN to node1
#   mix   published 8081:80/tcp, 2 replicas, at most one per node: one local
#         and one remote backend, seen from either node
#
# node0 (swarm-node0, 192.0.2.10) is the manager, node1 (swarm-node1,
# 192.0.2.11) the worker; MT_NODE_IP is the address of the node sourcing this.
# shellcheck disable=SC2034 # the MT_* variables are for the scripts sourcing this
# shellcheck source=services.sh
source "$MT_VM_DIR/services.sh"

MT_MANAGER_IP=192.0.2.10
MT_WORKER_IP=192.0.2.11
MT_SERVICES="far:1 mix:2"

create_services() {
	mt_service --name far --replicas 1 --constraint node.role==worker \
		--publish published=8080,target=80 "$MT_IMAGE" sh -c "$MT_HTTPD" || return 1
	mt_service --name mix --replicas 2 --replicas-max-per-node 1 \
		--publish published=8081,target=80 "$MT_IMAGE" sh -c "$MT_HTTPD" || return 1
}

# mesh_answers: far answers on node0's port, and both tasks of mix (IPVS
# round robin: two requests in a row reach both real servers).
mesh_answers() {
	http_get "$MT_NODE_IP:8080" >/dev/null && (($(answering 2 "$MT_NODE_IP:8081") == 2))
}

mesh_requests() {
	http_get "$MT_NODE_IP:8080"
	http_get "$MT_NODE_IP:8081"
	http_get "$MT_NODE_IP:8081"
}

# answering N HOST:PORT: how many distinct backends answered N GETs.
answering() {
	local i
	for ((i = 0; i < $1; i++)); do http_get "$2" || true; done | sort -u | grep -c .
}

warm_requests() {
	printf '%s\n' "http_get $MT_NODE_IP:8080" "http_get $MT_NODE_IP:8081" "http_get $MT_NODE_IP:8081"
}
