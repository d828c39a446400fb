#!/bin/bash
# A run2 job: an encrypted overlay across the two nodes, for the lanes of
# issues 13 and 14 to start from (Docker 28: `--suite forky`):
#
#   scripts/swarm-vm --suite forky run2 MESHTRACE scripts/vm/encrypted2.sh OUTDIR
#
# node0 creates the overlay `secnet` (--opt encrypted) and a service s2 on
# it with one task per node, then GETs its VIP six times from its local task
# (IPVS alternates between the local and the remote task, so half the
# requests cross the nodes in ESP). Each node then writes OUTDIR/nodeN/:
# xfrm.txt (`ip xfrm state`, `ip xfrm policy`, the host's -m bpf/-m policy
# rules, the esp/xfrm/ip_vs modules) and bundle/ (`meshtrace collect`);
# node0 also s2.txt (`docker service ps`, `docker node ls`) and traffic.txt.
# Measured: 128 s for the whole run, xfrm states for both directions on
# both nodes, every request answered.
set -uo pipefail
source "$MT_VM_DIR/services2.sh"
out=$MT_OUT
if [[ $MT_NODE_INDEX == 0 ]]; then
	docker network create --driver overlay --opt encrypted --attachable secnet
	docker service create --detach --quiet --no-resolve-image --name s2 --replicas 2 --replicas-max-per-node 1 \
		--network secnet "$MT_IMAGE" sh -c "$MT_HTTPD"
	for _ in $(seq 1 120); do
		[[ $(docker service ls --filter name=s2 --format '{{.Replicas}}') == 2/2* ]] && break
		sleep 2
	done
	docker service ps s2 >"$out/s2.txt"
	docker node ls >>"$out/s2.txt"
	vip=$(docker service inspect s2 | jq -r '.[0].Endpoint.VirtualIPs[0].Addr | sub("/.*"; "")')
	cid=$(docker ps -q --filter label=com.docker.swarm.service.name=s2 | head -1)
	ns=$(basename "$(docker inspect -f '{{.NetworkSettings.SandboxKey}}' "$cid")")
	for _ in 1 2 3 4 5 6; do
		echo "GET $vip from $ns: $(nsenter --net=/run/docker/netns/$ns timeout 5 busybox wget -q -O- http://$vip/ || echo FAILED)"
	done >"$out/traffic.txt"
	touch "$MT_XCHG/enc-ready"
else
	for _ in $(seq 1 300); do [[ -f $MT_XCHG/enc-ready ]] && break; sleep 1; done
fi
{
	echo "# ip xfrm state"; ip xfrm state
	echo "# ip xfrm policy"; ip xfrm policy
	echo "# iptables-save (mangle, filter INPUT)"; iptables-save | grep -E 'bpf|policy'
	echo "# lsmod esp"; grep -E '^(esp4|xfrm|ip_vs)' /proc/modules
} >"$out/xfrm.txt" 2>&1
meshtrace collect "$out/bundle" >/dev/null 2>&1 || echo "collect failed" >>"$out/xfrm.txt"
echo "encrypted2: done"
