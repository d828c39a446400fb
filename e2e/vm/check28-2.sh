#!/bin/bash
# The two-node Docker 28 e2e checks (issues 13 and 14, VM parts), run INSIDE
# both nodes of `scripts/swarm-vm --suite forky run2` (see e2e/vm/run28-2.sh):
# Debian forky's docker.io 28 on trixie's kernel 6.12, iptables-nft, node0
# (manager, 192.0.2.10) and node1 (worker, 192.0.2.11) with the services of
# scripts/vm/services2.sh. MT_NODE_INDEX says which node this is.
#
# 1. The two-node routing mesh, as the 20.10 two-node lane (check2.sh) checks
#    it: the swarm, inspect, Docker metadata, the paths to a task on the
#    other node over VXLAN, doctor, trace from node0 and from node1 as a
#    client. This lane replaces that one in CI (see e2e/vm/README.md).
# 2. An encrypted overlay (secnet, --opt encrypted) with a service (sec) that
#    has one task on each node: meshtrace reads the xfrm states and policies
#    as `ip xfrm` says; path from node0's task to sec's VIP reaches the task
#    on node1 and shows the ESP leg; doctor is clean; then on node0, one at a
#    time, each injected, named by doctor with its exact code (live and from
#    a collected bundle), shown by traffic, and repaired:
#      esp-blocked   the host's INPUT drops IP protocol 50 from node1
#      xfrm-missing  the out policy and the outbound ESP SA to node1 deleted
# 3. swarm collect for real (issue 14): a global job collects every node's
#    bundle, `swarm check --from` says consistent; one IPVS real server
#    removed from node0's ingress_sbox, collected again, the check names
#    node0 and only node0. The image is made on each node from the binary
#    under test with `docker import`, as h-swarm's scripts/image --tar does
#    (nothing can be pulled here, so the Dockerfile's build cannot run).
#
# Heavy work never runs on both guests at once (under TCG the nodes lose
# their sessions and Swarm reschedules every task): node0 runs its checks
# while node1 waits, then node1 runs its own while node0 waits; only the
# global job of swarm collect runs on both, as it must. The dispatcher
# heartbeat is raised to 60 s first.
#
# Writes $MT_OUT/results.txt and $MT_OUT/outputs/ like check.sh.
# shellcheck disable=SC2016 # jq filters are single-quoted on purpose
set -uo pipefail
# shellcheck source=check2.sh
source "$MT_JOB_DIR/check2.sh"

# Known failures of today's main, each with what fixes it.
# shellcheck disable=SC2034 # read by check.sh's check()
XFAIL=(
)

ENC_NET=secnet ENC_SVC=sec
DOCKER_REQID=13681891 # 0xd0c4e3, Docker's reqid and mark of its SAs and policies
PEER_IP=$MT_WORKER_IP
((MT_NODE_INDEX == 0)) || PEER_IP=$MT_MANAGER_IP

# xchg_wait_for SECONDS NAME: wait for the peer's file NAME on the exchange share.
xchg_wait_for() {
	local end=$((SECONDS + $1))
	until [[ -f $MT_XCHG/$2 ]]; do
		((SECONDS < end)) || return 1
		sleep 1
	done
}

# --- the encrypted overlay -------------------------------------------------------

# check_enc_setup: (node0) secnet and sec, one task per node, and traffic
# from node0's task to sec's VIP until node1's task has answered, so the SAs
# have carried packets both ways.
check_enc_setup() {
	docker network create --driver overlay --attachable --opt encrypted "$ENC_NET" >/dev/null
	mt_service --name "$ENC_SVC" --replicas 2 --replicas-max-per-node 1 --network "$ENC_NET" \
		"$MT_IMAGE" sh -c "$MT_HTTPD"
	local i vip ns answers=""
	for ((i = 0; i < 150; i++)); do
		(($(docker service ps -q --filter desired-state=running "$ENC_SVC" | wc -l) == 2)) &&
			[[ -n $(service_containers "$ENC_SVC") ]] && break
		sleep 2
	done
	docker service ps "$ENC_SVC"
	vip=$(service_vip "$ENC_SVC" "$ENC_NET")
	ns=$(container_netns "$(service_containers "$ENC_SVC" | head -1)")
	[[ -n $vip && -n $ns ]] || fail "no $ENC_SVC task here or no VIP on $ENC_NET"
	for ((i = 0; i < 30; i++)); do
		answers+="$(enc_get "$ns" "$vip") "
		(($(xargs -n1 <<<"$answers" | grep -v '^-$' | sort -u | wc -l) == 2)) && break
		sleep 1
	done
	echo "GET $vip from $ns answered by: $answers"
	(($(xargs -n1 <<<"$answers" | grep -v '^-$' | sort -u | wc -l) == 2)) ||
		fail "both tasks of $ENC_SVC never answered over $ENC_NET: $answers"
}

# enc_get NETNS ADDR: one GET from a task's netns; the answering hostname or "-".
enc_get() {
	nsenter --net="/run/docker/netns/$1" timeout 5 busybox wget -q -O- "http://$2/" 2>/dev/null || echo -
}

# enc_local_netns: the netns of this node's sec task.
enc_local_netns() { container_netns "$(service_containers "$ENC_SVC" | head -1)"; }

# enc_remote_ip: the address on secnet of sec's task on the other node.
enc_remote_ip() {
	local ip
	for ip in $(task_ips "$ENC_SVC" "$ENC_NET"); do
		[[ -n $(netns_of_ip "$ENC_SVC" "$ENC_NET" "$ip") ]] || { echo "$ip"; return 0; }
	done
	return 1
}

# xfrm_states_truth / xfrm_policies_truth: `ip xfrm` of the host, one
# "proto src dst spi reqid" / "dir src dst" a line.
xfrm_states_truth() { ip xfrm state | awk '/^src /{s=$2; d=$4} $1 == "proto" {print $2, s, d, $4, $6}'; }
xfrm_policies_truth() { ip xfrm policy | awk '/^src /{s=$2; d=$4} $1 == "dir" {print $2, s, d}'; }

# check_xfrm: the host's SAs and policies as meshtrace reads them over
# netlink are `ip xfrm`'s; the peer has Docker's SAs both ways and an out
# policy; secnet is known encrypted.
check_xfrm() {
	mt inspect-xfrm inspect -o json || fail "meshtrace inspect exited $?: $(tail -1 "$OUT/inspect-xfrm.err")"
	local h='.namespaces[] | select(.name == "host") | .xfrm'
	want_set "xfrm states" \
		"$(jqr inspect-xfrm "$h | .states[] | \"\(.proto)/\(.src)/\(.dst)/\(.spi)/\(.reqid)\"")" \
		"$(xfrm_states_truth | tr ' ' /)"
	want_set "xfrm policies" \
		"$(jqr inspect-xfrm "$h | .policies[] | \"\(.dir)/\(.sel.src)/\(.sel.dst)\"")" \
		"$(xfrm_policies_truth | tr ' ' /)"
	xfrm_states_truth | grep -q "^esp $MT_NODE_IP $PEER_IP .* $DOCKER_REQID\$" || fail "no outbound ESP SA to $PEER_IP (ip xfrm state)"
	xfrm_states_truth | grep -q "^esp $PEER_IP $MT_NODE_IP .* $DOCKER_REQID\$" || fail "no inbound ESP SA from $PEER_IP (ip xfrm state)"
	want "out policy to $PEER_IP" "$(jqr inspect-xfrm "[$h | .policies[] | select(.dir == \"out\" and .sel.dst == \"$PEER_IP/32\")] | length")" 1
	want "$ENC_NET encrypted" "$(jqr inspect-xfrm ".docker.networks[] | select(.name == \"$ENC_NET\") | .encrypted")" true
}

# out_spi: the SPI of the outbound SA the out policy to the peer names.
out_spi() {
	ip xfrm policy | awk -v d="$PEER_IP/32" '/^src /{p = ($4 == d)} p && $1 == "proto" && $3 == "spi" {print $4; exit}'
}

# check_path_esp: node0's task to sec's VIP: complete, node1's task remote
# behind secnet's VXLAN with node1 as VTEP, and the ESP leg (the outbound
# SA's SPI) shown.
check_path_esp() {
	local vip ns rip spi b
	vip=$(service_vip "$ENC_SVC" "$ENC_NET") ns=$(enc_local_netns) rip=$(enc_remote_ip) spi=$(out_spi)
	[[ -n $vip && -n $ns && -n $rip && -n $spi ]] || fail "VIP '$vip', task netns '$ns', remote task '$rip', SPI '$spi': something is missing"
	mt path-esp path --vip "$vip" --netns "$ns" --port 80 -o json ||
		fail "meshtrace path --vip exited $?: $(tail -1 "$OUT/path-esp.err")"
	want complete "$(jqr path-esp .complete)" true
	want_set backends "$(jqr path-esp '.backends[].ip')" "$(task_ips "$ENC_SVC" "$ENC_NET")"
	b=".backends[] | select(.ip == \"$rip\")"
	want "remote of backend $rip" "$(jqr path-esp "$b | .remote")" true
	want "vtep of backend $rip" "$(jqr path-esp "$b | .vtep")" "$PEER_IP"
	want "via of backend $rip" "$(jqr path-esp "$b | .via" | sed 's,/.*,,')" "$(overlay_netns "$ENC_NET")"
	want "ESP leg (SPI $spi) on the way to $rip" \
		"$(jqr path-esp '[.. | strings | select(ascii_downcase | contains($spi))] | length > 0' --arg spi "$spi")" true
}

# enc_fault NAME CODE BREAK REPAIR: inject BREAK; doctor names exactly CODE
# in host, live and from a collected bundle; the GET to node1's task over
# secnet fails; REPAIR; the GET answers and doctor is clean again.
enc_fault() {
	local name=$1 code=$2 brk=$3 repair=$4 ns rip rc=0
	ns=$(enc_local_netns) rip=$(enc_remote_ip)
	[[ -n $ns && -n $rip ]] || fail "no local task netns ('$ns') or remote task ('$rip') of $ENC_SVC"
	[[ $(enc_get "$ns" "$rip") != - ]] || fail "node1's task $rip does not answer before $name"
	"$brk"
	set +e
	(
		set -e
		mt "$name-doctor" doctor -o json || true
		want "doctor on $name" "$(doctor_serious "$name-doctor")" "$code host"
		mt "$name-collect" collect "$OUT/$name-bundle" || fail "collect exited $?: $(tail -1 "$OUT/$name-collect.err")"
		mt "$name-offline" doctor --from "$OUT/$name-bundle" -o json || true
		want "doctor offline on $name" "$(doctor_serious "$name-offline")" "$code host"
		want "GET $rip over $ENC_NET while broken" "$(enc_get "$ns" "$rip")" -
	)
	rc=$?
	set -e
	"$repair"
	((rc == 0)) || fail "the checks of $name failed (see above)"
	local i got=-
	for ((i = 0; i < 5; i++)); do
		got=$(enc_get "$ns" "$rip")
		[[ $got == - ]] || break
		sleep 2
	done
	[[ $got != - ]] || mismatch "$name: $rip over $ENC_NET not answered after the repair"
	mt "$name-healed" doctor -o json || true
	want "doctor after repairing $name" "$(doctor_serious "$name-healed")" ""
}

esp_block() { iptables -I INPUT -p esp -s "$PEER_IP" -j DROP; }
esp_unblock() { iptables -D INPUT -p esp -s "$PEER_IP" -j DROP; }

# xfrm_delete: the out policy to the peer, then the outbound SA it names,
# kept in XFRM_SAVED (inside the VM only: it holds the key) for xfrm_restore.
xfrm_delete() {
	local spi
	spi=$(out_spi)
	[[ -n $spi ]] || fail "no out policy to $PEER_IP"
	XFRM_SAVED=$(ip xfrm state get src "$MT_NODE_IP" dst "$PEER_IP" proto esp spi "$spi" |
		awk -v spi="$spi" '$1 == "aead" {print spi, $2, $3, $4}')
	[[ -n $XFRM_SAVED ]] || fail "no aead SA $spi to $PEER_IP"
	ip xfrm policy delete src "$MT_NODE_IP/32" dst "$PEER_IP/32" proto udp dport 4789 dir out \
		mark "$DOCKER_REQID" mask 0xffffffff
	ip xfrm state delete src "$MT_NODE_IP" dst "$PEER_IP" proto esp spi "$spi"
	echo "deleted the out policy and SA $spi to $PEER_IP"
}

xfrm_restore() {
	local spi algo key icv
	read -r spi algo key icv <<<"$XFRM_SAVED"
	ip xfrm state add src "$MT_NODE_IP" dst "$PEER_IP" proto esp spi "$spi" reqid "$DOCKER_REQID" \
		mode transport replay-window 0 aead "$algo" "$key" "$icv"
	ip xfrm policy add src "$MT_NODE_IP/32" dst "$PEER_IP/32" proto udp dport 4789 dir out \
		priority 0 mark "$DOCKER_REQID" mask 0xffffffff \
		tmpl src "$MT_NODE_IP" dst "$PEER_IP" proto esp spi "$spi" reqid "$DOCKER_REQID" mode transport
	echo "restored SA $spi and the out policy to $PEER_IP"
}

# --- trace through ESP (issue 13) --------------------------------------------------

# check_trace_esp: (node0, while node1 captures too: serve_esp) a live
# east-west trace from node0's sec task to sec's VIP over the encrypted
# overlay: the flow to node1's task leaves node0's underlay as ESP with the
# SPI of node0's out SA (the one its out policy names), tied to the inner
# packet; its reply comes in through an inbound SA from node1. Then the
# captures of both nodes replayed over the swarm collect of both (DIR
# swarm): the same ESP packet (SPI, seq) on node1's underlay.
check_trace_esp() {
	local vip ns rip spi f peer name=trace-esp
	vip=$(service_vip "$ENC_SVC" "$ENC_NET") ns=$(enc_local_netns) rip=$(enc_remote_ip) spi=$(out_spi)
	peer=$(docker node ls --format '{{.Hostname}}' | grep -vx "$(hostname)" | head -1)
	[[ -n $vip && -n $ns && -n $rip && -n $spi && -n $peer ]] ||
		fail "VIP '$vip', task netns '$ns', remote task '$rip', SPI '$spi', peer '$peer': something is missing"
	rm -f "$MT_XCHG"/esp-cap-*
	echo "$vip" >"$MT_XCHG/.esp-cap-start" && mv "$MT_XCHG/.esp-cap-start" "$MT_XCHG/esp-cap-start" # (a worker cannot ask for the VIP)
	xchg_wait_for 240 esp-cap-ready || fail "node1 never started its capture (serve_esp)"
	echo "meshtrace trace --vip $vip --netns $ns --port 80 --probe --count 4 --pcap $OUT/$name.pcapng -o json"
	local rc=0
	timeout 240 meshtrace trace --vip "$vip" --netns "$ns" --port 80 --probe --count 4 --timeout 60s \
		--pcap "$OUT/$name.pcapng" -o json >"$OUT/$name.out" 2>"$OUT/$name.err" || rc=$?
	xchg_put_file esp-cap-stop
	xchg_wait_for 120 esp-cap-done || echo "node1 never handed its capture over"
	((rc == 0 || rc == 3)) || fail "meshtrace trace exited $rc: $(tail -1 "$OUT/$name.err")"
	f="[.flows[] | select(.backend.ip == \"$rip\" and .complete)][0]"
	want "a complete flow to $rip" "$(jqr "$name" "$f | .backend.ip")" "$rip"
	want "ESP out of host/eth0 with the out SA's SPI" \
		"$(jqr "$name" "[$f.hops[] | select(.esp and .netns == \"host\" and .dir == \"out\") | .esp.spi][0]")" "$spi"
	want "its ESP match" "$(jqr "$name" "[$f.hops[] | select(.esp) | .esp.match][0] | IN(\"length\", \"length+order\")")" true
	want "its SA" "$(jqr "$name" "[$f.hops[] | select(.esp) | .esp.sa][0] | contains(\"$spi\")")" true
	want "the reply in through an SA from $PEER_IP" \
		"$(jqr "$name" "[$f.reply_hops[] | select(.esp and .dir == \"in\") | .esp.src][0]")" "$PEER_IP"
	want "esp-encrypt explained" "$(jqr "$name" "[$f.rewrites[] | select(.kind == \"esp-encrypt\") | .rule][0] | contains(\"$spi\")")" true
	want "no ESP of the out SA unmatched or ambiguous" \
		"$(jqr "$name" "[.esp[] | select(.spi == \"$spi\") | .unmatched + .ambiguous] | add")" 0
	[[ -s $MT_XCHG/esp-cap-n1.pcapng ]] || fail "no capture from node1"
	cp "$MT_XCHG/esp-cap-n1.pcapng" "$OUT/$name-n1.pcapng"
	[[ -d $OUT/swarm/$peer ]] || fail "no swarm collect of $peer in $OUT/swarm (swarm-collect failed?)"
	mt "$name-replay" replay "$(hostname)=$OUT/$name.pcapng" "$peer=$OUT/$name-n1.pcapng" --from "$OUT/swarm" \
		--vip "$vip" --netns "$ns" --port 80 -o json || (($? == 3)) ||
		fail "meshtrace replay exited $?: $(tail -1 "$OUT/$name-replay.err")"
	want "replay: the remote flow's request in on $peer's underlay through the out SA" \
		"$(jqr "$name-replay" "[$f.hops[] | select(.esp and .node == \"$peer\" and .dir == \"in\") | .esp.spi][0]")" "$spi"
	# one sighting tied to the inner packet by length (on the node whose
	# clock comes first), the other the same ESP packet by (SPI, seq)
	want "replay: how its two ESP sightings were matched" \
		"$(jqr "$name-replay" "[$f.hops[] | select(.esp) | .esp.match] | sort | join(\",\")")" "length,spi+seq"
	want "replay: ESP on both underlays, one seq" \
		"$(jqr "$name-replay" "[$f.hops[] | select(.esp) | .esp.seq] | unique | length")" 1
}

# serve_esp: (node1) when node0 asks (esp-cap-start), capture what its
# east-west trace sends here: meshtrace trace from this node's sec task to
# the VIP (its plan holds the underlay, the VXLAN device and the task), as
# pcapng, until node0 says stop; the capture goes to the exchange share.
serve_esp() {
	local start=$SECONDS pid i vip ns
	until [[ -f $MT_XCHG/esp-cap-start ]]; do
		((SECONDS - start < 1500)) && [[ ! -f $MT_XCHG/done-0 ]] || return 0
		sleep 1
	done
	vip=$(cat "$MT_XCHG/esp-cap-start") ns=$(enc_local_netns)
	echo "meshtrace trace --vip $vip --netns $ns --port 80 --count 0 --timeout 200s --pcap $OUT/trace-esp-n1.pcapng"
	meshtrace trace --vip "$vip" --netns "$ns" --port 80 --count 0 --timeout 200s \
		--pcap "$OUT/trace-esp-n1.pcapng" -o json >"$OUT/trace-esp-n1.out" 2>"$OUT/trace-esp-n1.err" &
	pid=$!
	# Ready once the pcapng is created (after the model is read), and its
	# sockets opened just after.
	for ((i = 0; i < 150; i++)); do
		[[ -e $OUT/trace-esp-n1.pcapng ]] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	sleep 5
	xchg_put_file esp-cap-ready
	until [[ -f $MT_XCHG/esp-cap-stop ]]; do
		((SECONDS - start < 1800)) || break
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	kill -TERM "$pid" 2>/dev/null # (SIGINT is ignored by a background job of a script)
	wait "$pid"
	echo "node1's trace exited $?: $(tail -2 "$OUT/trace-esp-n1.err")"
	cp "$OUT/trace-esp-n1.pcapng" "$MT_XCHG/.esp-cap-n1.pcapng" && mv "$MT_XCHG/.esp-cap-n1.pcapng" "$MT_XCHG/esp-cap-n1.pcapng"
	xchg_put_file esp-cap-done
}

# --- swarm collect and check (issue 14) --------------------------------------------

# SWARM_IMAGE: the meshtrace image the global job runs, made on each node
# from the binary under test (nothing can be pulled here).
SWARM_IMAGE=meshtrace:e2e

# swarm_image: SWARM_IMAGE on this node (every node needs it for the job),
# and /run a shared mount: the job binds /var/run/docker/netns rslave, which
# dockerd refuses on a private mount. systemd makes every mount shared; this
# VM has no systemd and node-init mounts /run private.
swarm_image() {
	local dir
	mount --make-rshared /run
	dir=$(mktemp -d)
	cp "$(command -v meshtrace)" "$dir/meshtrace"
	tar -C "$dir" -c meshtrace | docker import --change 'ENTRYPOINT ["/meshtrace"]' - "$SWARM_IMAGE" >/dev/null
	rm -rf "$dir"
}

# swarm_collect NAME: `meshtrace swarm collect` into outputs/NAME, then
# `swarm check --from` it into outputs/NAME-check.out (JSON).
swarm_collect() {
	# Under TCG a node's collect takes a minute or two: --timeout 6m (mt's
	# bound is 180 s).
	echo "meshtrace swarm collect --image $SWARM_IMAGE --timeout 6m $OUT/$1"
	timeout 420 meshtrace swarm collect --image "$SWARM_IMAGE" --timeout 6m "$OUT/$1" >"$OUT/$1.out" 2>"$OUT/$1.err" ||
		fail "swarm collect exited $?: $(tail -3 "$OUT/$1.err")"
	want_set "bundles collected" "$(find "$OUT/$1" -mindepth 1 -maxdepth 1 -type d -printf '%f\n')" \
		"$(docker node ls --format '{{.Hostname}}')"
	mt "$1-check" swarm check --from "$OUT/$1" -o json || true
	[[ -s $OUT/$1-check.out ]] || fail "swarm check --from exited with no output: $(tail -1 "$OUT/$1-check.err")"
}

# swarm_serious NAME: the check's findings above info, "node code" each.
swarm_serious() { jqr "$1" '[.findings[] | select(.severity != "info") | "\(.node) \(.code)"] | unique | join(", ")'; }

# check_swarm_collect: every node's bundle through a global job; consistent.
check_swarm_collect() {
	swarm_collect swarm
	want "consistent" "$(jqr swarm-check .consistent)" true
	want "findings above info" "$(swarm_serious swarm-check)" ""
}

# check_swarm_host: in every bundle of both collections, the node's host
# firewall is its own: Docker's ingress DNAT chain is there.
check_swarm_host() {
	local dir node
	for dir in swarm swarm-stale; do
		for node in $(docker node ls --format '{{.Hostname}}'); do
			grep -q '^:DOCKER-INGRESS ' "$OUT/$dir/$node/netns/host/iptables-save.txt" 2>/dev/null ||
				mismatch "$dir/$node: host's iptables-save.txt has no DOCKER-INGRESS chain: $(grep -c '^-A' "$OUT/$dir/$node/netns/host/iptables-save.txt" 2>/dev/null) rules, the same as $(cd "$OUT/$dir/$node/netns" && for d in */; do [[ $d != host/ ]] && cmp -s host/iptables-save.txt "$d/iptables-save.txt" && echo -n "${d%/} "; done)"
		done
	done
}

# check_swarm_stale: one real server of mix (8081) removed from node0's
# ingress_sbox: collected again, the check names node0, and only node0.
check_swarm_stale() {
	local fw real line
	fw=$(ingress_fwmark tcp 8081) || fail "ingress_sbox has no mark for tcp/8081"
	line=$(ns_exec ingress_sbox ipvsadm-save -n | awk -v f="$fw" '$1 == "-a" && $3 == f' | head -1)
	real=$(awk '{for (i = 4; i < NF; i++) if ($i == "-r") print $(i + 1)}' <<<"$line")
	[[ -n $real ]] || fail "no real server of fwmark $fw in ingress_sbox"
	ns_exec ingress_sbox ipvsadm -d -f "$fw" -r "$real"
	echo "removed real server $real of fwmark $fw (was: $line)"
	set +e
	(
		set -e
		swarm_collect swarm-stale
		want "consistent" "$(jqr swarm-stale-check .consistent)" false
		want "nodes named" "$(jqr swarm-stale-check '[.findings[] | select(.severity != "info") | .node] | unique | join(" ")')" \
			"$(hostname)"
		jqr swarm-stale-check '.findings[] | select(.severity != "info") | .code' | grep -qx backends-diverge ||
			mismatch "no backends-diverge finding: $(swarm_serious swarm-stale-check)"
	)
	local rc=$?
	set -e
	# Put it back as it was (-a -f FW -r REAL -m -w W: the line's own words).
	# shellcheck disable=SC2086
	ns_exec ingress_sbox ipvsadm ${line}
	((rc == 0)) || fail "the stale-node checks failed (see above)"
}

# --- the lane -----------------------------------------------------------------------

# check_heartbeat: (node0) a dispatcher heartbeat TCG can keep.
check_heartbeat() {
	docker swarm update --dispatcher-heartbeat 60s >/dev/null
	want heartbeat "$(docker info -f '{{.Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}}')" 1m0s
}

node0_main() {
	check heartbeat check_heartbeat
	check swarm check_swarm
	check enc-setup check_enc_setup
	check inspect check_inspect
	check docker-meta check_docker_meta
	check path-tcp-8080 check_path tcp 8080
	check path-tcp-8081 check_path tcp 8081
	check trace-tcp-8080 check_trace tcp 8080
	check doctor check_doctor
	check xfrm check_xfrm
	check path-esp check_path_esp
	check fault-esp-blocked enc_fault esp-blocked esp-blocked esp_block esp_unblock
	check fault-xfrm-missing enc_fault xfrm-missing xfrm-missing xfrm_delete xfrm_restore
	xchg_put_file n0-solo
	xchg_wait_for 300 n1-image || echo "node1 never made $SWARM_IMAGE"
	swarm_image
	check swarm-collect check_swarm_collect
	check swarm-stale check_swarm_stale
	check swarm-collect-host check_swarm_host
	xchg_put_file n0-swarm
	xchg_wait_for 1200 n1-checks || echo "node1 never finished its checks"
	check trace-peer-tcp-8080 check_trace_peer tcp 8080
	check trace-esp check_trace_esp
}

node1_main() {
	swarm_image && xchg_put_file n1-image
	xchg_wait_for 1200 n0-solo || echo "node0 never finished its own checks"
	xchg_wait_for 900 n0-swarm || echo "node0 never finished swarm collect"
	check inspect check_inspect
	check docker-meta check_docker_meta
	# 8081 (mix: a local and a remote task) is node0's to check; from here
	# 8080 is far's local task.
	check path-tcp-8080 check_path tcp 8080
	check doctor check_doctor
	check xfrm check_xfrm
	xchg_put_file n1-checks
	serve_esp >"$OUT/serve-esp.log" 2>&1 &
	serve_peer >"$OUT/serve-peer.log" 2>&1
	wait
}

xchg_put_file() { touch "$MT_XCHG/.$1" && mv "$MT_XCHG/.$1" "$MT_XCHG/$1"; }

main() {
	checks_begin
	if ((MT_NODE_INDEX == 0)); then node0_main; else node1_main; fi
	! grep -q '^FAIL' "$RESULTS"
}

main "$@"
