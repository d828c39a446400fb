#!/bin/bash
# Job that records the Docker 28 node (fixtures/swarm-vm28), run with the
# meshtrace binary under test:
#
#   CGO_ENABLED=0 go build -o /tmp/meshtrace ./cmd/meshtrace
#   scripts/swarm-vm --suite forky run /tmp/meshtrace scripts/vm/record28.sh OUTDIR
#
# After traffic on every path (services28.sh), it writes into $MT_OUT:
#
#   VERSIONS            kernel, Debian, docker, containerd, runc, iptables, date
#   collect/            `meshtrace collect` of the node
#   plain/              the bundle an operator assembles by hand with the plain
#                       commands of the write-ups (record_plain_bundle):
#                       netns/<name>/ip-addr.txt (`ip addr`), iptables-save.txt
#                       (`iptables-save`), ipvsadm.txt (`ipvsadm -Ln`), and
#                       docker/*.json (`docker network inspect`, `docker
#                       inspect`, `docker service inspect`)
#   truth/              dockerd's and the kernel's own answers, to check
#                       meshtrace's against:
#     docker/           networks.json (`docker network inspect --verbose`),
#                       containers.json, services.json, tasks.json, and
#                       netns-map.txt (netns file -> what dockerd says it is)
#     service-ps.txt    `docker service ls` and `docker service ps --no-trunc`
#     vips.txt          service network VIP, from `docker service inspect`
#     ipvsadm-save/     `ipvsadm-save -n` of every netns that has IPVS services
#     traffic.txt       each request and who answered it, or that nothing did
#     routes.txt        `ip route get VIP` from the caller's netns, per VIP
#     dns.txt           what the embedded DNS of caller's task answers
#     host-xfrm.txt     `ip xfrm state` and `ip xfrm policy` of the node
set -euo pipefail
# shellcheck source=record.sh
source "$MT_VM_DIR/record.sh"
# shellcheck source=services28.sh
source "$MT_VM_DIR/services28.sh"

# record_truth DIR: dockerd's and the kernel's answers (see above).
record_truth() {
	local dir=$1 ns svc net vip
	BUNDLE=$dir record_docker
	{
		docker service ls
		echo
		# shellcheck disable=SC2046
		docker service ps --no-trunc $(service_names)
	} >"$dir/service-ps.txt"
	# shellcheck disable=SC2046
	docker service inspect $(docker service ls -q) | jq -r '.[] | .Spec.Name as $s
		| (.Endpoint.VirtualIPs // [])[] | "\($s) \(.NetworkID) \(.Addr)"' |
		while read -r svc net vip; do
			echo "$svc $(docker network inspect -f '{{.Name}}' "$net") $vip"
		done | sort >"$dir/vips.txt"
	mkdir -p "$dir/ipvsadm-save"
	for ns in $(ls /run/docker/netns) host; do
		in_netns "$ns" ipvsadm-save -n >"$dir/ipvsadm-save/$ns.txt"
		[[ -s $dir/ipvsadm-save/$ns.txt ]] || rm "$dir/ipvsadm-save/$ns.txt"
	done
	{
		echo "# from caller (appnet only):"
		for vip in api:appnet sapi:secnet; do
			echo "ip route get $(service_vip "${vip%%:*}" "${vip##*:}") # ${vip%%:*} on ${vip##*:}"
			in_task caller ip route get "$(service_vip "${vip%%:*}" "${vip##*:}")"
		done
	} >"$dir/routes.txt"
	{
		echo "# busybox nslookup NAME 127.0.0.11 in caller's netns"
		for svc in api rr tasks.rr sapi; do echo "$svc: $(task_dns caller "$svc" | paste -sd' ')"; done
	} >"$dir/dns.txt"
	{
		echo "# ip xfrm state"
		ip xfrm state
		echo "# ip xfrm policy"
		ip xfrm policy
	} >"$dir/host-xfrm.txt"
}

# record_traffic FILE: each path once, who answered; the caller's request
# to sapi's VIP must not be answered (the caller has no leg in secnet).
record_traffic() {
	local file=$1 req got
	for req in "http_get $MT_NODE_IP:8080" "client_get $MT_NODE_IP:8080" "ew_get caller api appnet" \
		"ew_get rr sapi secnet" "ew_get caller sapi secnet"; do
		if got=$($req 2>/dev/null); then
			echo "$req: answered by $got"
		else
			echo "$req: not answered"
		fi
	done >"$file"
}

main() {
	record_versions "scripts/vm/record28.sh (scripts/swarm-vm --suite forky run)"
	warm_traffic 2
	sleep 3 # IPVS folds its stats every 2 s
	mkdir -p "$MT_OUT/truth"
	record_traffic "$MT_OUT/truth/traffic.txt"
	meshtrace collect "$MT_OUT/collect"
	record_plain_bundle "$MT_OUT/plain"
	record_truth "$MT_OUT/truth"
	cat "$MT_OUT/truth/traffic.txt"
	echo "recorded $(find "$MT_OUT" -type f | wc -l) files"
}

main "$@"
