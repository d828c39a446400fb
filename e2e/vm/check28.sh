#!/bin/bash
# The Docker 28 e2e checks (issue 10 point 8; issue 18's module check), run
# INSIDE the node of `scripts/swarm-vm --suite forky run` with
# MT_VM_DOCKER_LATER=1 (see e2e/vm/run.sh --docker28): Debian forky's
# docker.io 28.5.2, trixie's kernel 6.12 (everything modular), iptables-nft,
# and the services of scripts/vm/services28.sh (an encrypted overlay, a
# dnsrr service, an east-west caller).
#
# 1. The node boots WITHOUT dockerd (nor its modules). lsmod is recorded,
#    meshtrace inspect, path, doctor, collect and trace run, and lsmod must
#    be unchanged: looking loads no module (issue 18).
# 2. dockerd starts (node-init docker-up) and the services answer. Every
#    answer of meshtrace, live and from two bundles (`meshtrace collect`, and
#    one assembled with plain commands: `ip addr`, `iptables-save`,
#    `ipvsadm -Ln`), is compared with dockerd's own (`docker network inspect
#    --verbose`, `docker service ps`/`inspect`, `ipvsadm-save -n`,
#    `iptables-save`) and with traffic that is or is not answered.
#
# Checks that today's meshtrace fails for a known reason are listed in
# XFAIL (check.sh's harness) with the issue point that fixes them.
#
# Writes $MT_OUT/results.txt and $MT_OUT/outputs/ like check.sh.
# shellcheck disable=SC2016 # jq filters are single-quoted on purpose
set -uo pipefail
# shellcheck source=check.sh
source "$MT_JOB_DIR/check.sh"
# shellcheck source=../../scripts/vm/services28.sh
source "$MT_VM_DIR/services28.sh"

# Known failures of today's main, each with the point whose fix flips it.
# Failed on af453c2 and pass since main merged h-modules, h-nft, h-roles and
# the missing-data work: nodocker-lsmod (issue 18), firewall-encrypted (10.6),
# ew-unreachable and ew-unreachable-ingress (10.3), plain-roles (10.1),
# missing-data (10.4); trace-flooded (the PACKET_OTHERHOST filter) and
# listing-bundle (10.2) passed in the fresh-clone CI run of 9eb85b9.
# shellcheck disable=SC2034 # read by check.sh's check()
XFAIL=(
)

# --- 1. before dockerd: looking loads no module (issue 18) ----------------------

# modules: the loaded modules, one name a line, sorted.
modules() { awk '{print $1}' /proc/modules | sort; }

# NODOCKER: name and arguments of each command run on the node without dockerd.
NODOCKER=(
	"inspect inspect -o json"
	"path path --port 8080 -o json"
	"doctor doctor -o json"
	"collect collect $OUT/nodocker-bundle"
	"trace trace --port 8080 --count 1 --timeout 5s -o json"
)

# check_nodocker_run: each command ends by itself (no hang, no panic), with
# /proc/modules recorded before and after all of them.
check_nodocker_run() {
	local c name rc
	modules >"$OUT/nodocker-modules-before.txt"
	for c in "${NODOCKER[@]}"; do
		name=nodocker-${c%% *}
		rc=0
		# shellcheck disable=SC2086 # the arguments are words
		mt "$name" ${c#* } || rc=$?
		echo "$name: exit status $rc: $(tail -1 "$OUT/$name.err")"
		((rc != 124 && rc != 137)) || mismatch "$name: did not end within 180 s"
		! grep -q '^panic:\|^goroutine [0-9]' "$OUT/$name.err" || mismatch "$name: panicked"
	done
	modules >"$OUT/nodocker-modules-after.txt"
	[[ -s $OUT/nodocker-modules-before.txt ]] || fail "no modules listed in /proc/modules"
}

# check_nodocker_lsmod: the commands above loaded nothing.
check_nodocker_lsmod() {
	[[ -f $OUT/nodocker-modules-after.txt ]] || fail "the commands did not run"
	local loaded
	loaded=$(comm -13 "$OUT/nodocker-modules-before.txt" "$OUT/nodocker-modules-after.txt" | paste -sd' ')
	[[ -z $loaded ]] || mismatch "modules loaded while meshtrace looked: $loaded"
}

# check_docker_sees: issue 18's second half: once dockerd runs (and has
# loaded its modules), the same five commands see everything. Read from the
# outputs of the checks that ran them (inspect, path-tcp-8080, doctor,
# bundle-collect, trace-tcp-8080), against what they saw without dockerd.
check_docker_sees() {
	want "ingress sandbox without dockerd" \
		"$(jqr nodocker-inspect '[.namespaces[] | select(.role == "ingress-sandbox")] | length')" 0
	want "ingress sandbox with dockerd" "$(jqr inspect '[.namespaces[] | select(.role == "ingress-sandbox") | .name] | join(" ")')" ingress_sbox
	want "IPVS read in ingress_sbox" "$(jqr inspect '.namespaces[] | select(.name == "ingress_sbox") | .ipvs.available')" true
	want "path 8080 complete" "$(jqr path-tcp-8080 .complete)" true
	[[ -s $OUT/doctor.out ]] || mismatch "doctor wrote nothing"
	grep -q '^-A -f ' "$OUT/bundle-collect/netns/ingress_sbox/ipvsadm.txt" 2>/dev/null ||
		mismatch "collect wrote no IPVS service for ingress_sbox"
	want "trace flows" "$(jqr trace-tcp-8080 '.flows | length > 0')" true
}

# docker_up: dockerd, the swarm and the services, until they answer.
docker_up() {
	echo "starting dockerd (node-init docker-up)"
	if ! timeout 900 bash "$MT_VM_DIR/node-init" docker-up; then
		echo "FAIL docker-up: dockerd or the services did not come up (vm-logs/node.log)" >>"$RESULTS"
		return 1
	fi
	# shellcheck disable=SC2034 # read by truth.sh (it was empty without dockerd)
	MT_IS_MANAGER=$(docker info -f '{{.Swarm.ControlAvailable}}')
	cache_names
}

# Every docker CLI call costs a second or more under TCG: the VIPs and task
# namespaces the checks ask for again and again are looked up once, after
# the services answer (tasks are not rescheduled on a healthy node).
declare -A NAME_CACHE=()
eval "$(declare -f service_vip | sed '1s/service_vip/service_vip_uncached/')"
eval "$(declare -f task_netns | sed '1s/task_netns/task_netns_uncached/')"
service_vip() { echo "${NAME_CACHE[vip:$1:$2]:-$(service_vip_uncached "$1" "$2")}"; }
task_netns() { echo "${NAME_CACHE[netns:$1]:-$(task_netns_uncached "$1")}"; }
cache_names() {
	local p s cid
	for p in api:appnet sapi:secnet caller:appnet web:ingress; do
		NAME_CACHE[vip:$p]=$(service_vip_uncached "${p%%:*}" "${p##*:}")
	done
	for s in caller rr; do NAME_CACHE[netns:$s]=$(task_netns_uncached "$s"); done
	# tasks:SERVICE: the short container ids (= hostnames) of its tasks here.
	while read -r cid s; do
		NAME_CACHE[tasks:$s]+="$cid "
	done < <(docker ps --format '{{.ID}} {{.Label "com.docker.swarm.service.name"}}')
}

# --- 2. with dockerd: the scenario as dockerd and traffic say -----------------

# answered_by_task SERVICE ANSWER: ANSWER (a hostname) is a task of SERVICE.
answered_by_task() {
	tr ' ' '\n' <<<"${NAME_CACHE[tasks:$1]:-}" | grep -qx "$2"
}

# gwbridge_gateway: docker_gwbridge's gateway address.
gwbridge_gateway() {
	docker network inspect docker_gwbridge | jq -r '.[0].IPAM.Config[0].Gateway'
}

# check_scenario: what the other checks rest on, from dockerd and traffic
# alone: who answers whom, and who does not.
check_scenario() {
	local got vip via svc
	got=$(http_get "$MT_NODE_IP:8080") || fail "8080 not answered"
	answered_by_task web "$got" || mismatch "8080 answered by '$got', not a web task"
	got=$(ew_get caller api appnet) || fail "caller -> api VIP not answered"
	answered_by_task api "$got" || mismatch "caller -> api answered by '$got', not an api task"
	got=$(ew_get rr sapi secnet) || fail "rr -> sapi VIP (encrypted overlay) not answered"
	answered_by_task sapi "$got" || mismatch "rr -> sapi answered by '$got', not a sapi task"
	if got=$(ew_get caller sapi secnet); then
		mismatch "caller (not on secnet) -> sapi VIP was answered by '$got'"
	fi
	vip=$(service_vip web ingress)
	if got=$(in_task caller timeout 5 busybox wget -q -O- "http://$vip/"); then
		mismatch "caller (not on ingress) -> web's ingress VIP $vip was answered by '$got'"
	fi
	# The caller's route to sapi's VIP: the default, through docker_gwbridge.
	via=$(in_task caller ip -o route get "$(service_vip sapi secnet)" | sed -nE 's/.* via ([0-9.]+) .*/\1/p')
	want "caller's next hop to sapi's VIP" "$via" "$(gwbridge_gateway)"
	want "secnet encrypted" "$(docker network inspect secnet | jq -r '.[0].Options | has("encrypted")')" true
	# dnsrr: no VIP; the embedded DNS answers the task addresses.
	want "VIPs of rr" "$(docker service inspect rr | jq -r '[.[0].Endpoint.VirtualIPs // [] | .[]] | length')" 0
	want_set "DNS rr from caller" "$(task_dns caller rr)" "$(task_ips rr appnet)"
	want_set "DNS api from caller" "$(task_dns caller api)" "$(service_vip api appnet)"
	local running
	# shellcheck disable=SC2046
	running=$(docker service ps --filter desired-state=running --format '{{.Name}}' $(service_names))
	for svc in $MT_SERVICES; do
		want "running tasks of ${svc%%:*} (docker service ps)" \
			"$(grep -c "^${svc%%:*}\." <<<"$running" || true)" "${svc##*:}"
	done
}

# --- 2. live meshtrace against the node ------------------------------------------

# ipvs_truth NETNS: "fwmark real" per IPVS real server, from ipvsadm-save -n.
ipvs_truth() {
	ns_exec "$1" ipvsadm-save -n | awk '$1 == "-a" && $2 == "-f" {
		for (i = 4; i < NF; i++) if ($i == "-r") { split($(i + 1), a, ":"); print $3, a[1] } }' | sort
}

# check_ipvs: meshtrace's IPVS of every netns is ipvsadm-save's, and no IPVS
# service anywhere balances to a task of the dnsrr service.
check_ipvs() {
	[[ -s $OUT/inspect.out ]] || mt inspect inspect -o json || fail "meshtrace inspect exited $?"
	local ns got truth all="" ip
	for ns in host $(docker_netns_names); do
		truth=$(ipvs_truth "$ns")
		all+=$truth$'\n'
		got=$(jqr inspect '.namespaces[] | select(.name == $n) | (.ipvs.services // [])[]
			| .fwmark as $f | (.dests // [])[] | "\($f) \(.addr)"' --arg n "$ns" | sort)
		want "IPVS of $ns" "$(paste -sd, <<<"$got")" "$(paste -sd, <<<"$truth")"
	done
	grep -q . <<<"$all" || fail "no IPVS real server on the node (truth helper broken?)"
	for ip in $(task_ips rr appnet) $(task_ips rr secnet); do
		! grep -q " $ip\$" <<<"$all" || mismatch "an IPVS service balances to rr's task $ip (dnsrr)"
	done
}

# check_dnsrr: meshtrace names rr's tasks and gives rr no IPVS and no VIP path.
check_dnsrr() {
	[[ -s $OUT/inspect.out ]] || mt inspect inspect -o json || fail "meshtrace inspect exited $?"
	local want_ns cid
	want_ns=$(for cid in $(service_containers rr); do container_netns "$cid"; done)
	want_set "netns of rr's tasks" \
		"$(jqr inspect '.namespaces[] | select(.docker.service == "rr") | .name')" "$want_ns"
	want "rr tasks as backends of any IPVS service" \
		"$(jqr inspect '[.namespaces[] | (.ipvs.services // [])[] | (.dests // [])[] | select(.addr as $a | $ips | index($a))] | length' \
			--argjson ips "$({ task_ips rr appnet; task_ips rr secnet; } | jq -R . | jq -sc .)")" 0
}

# fw_rules_truth NETNS: "table rule" per rule, from iptables-save.
fw_rules_truth() {
	ns_exec "$1" iptables-save | awk '/^\*/ {t = substr($0, 2)} /^-A / {print t, $0}' | sort
}

# fw_rules_mt NETNS: the same from meshtrace inspect's live (nf_tables) reading.
fw_rules_mt() {
	jqr inspect '.namespaces[] | select(.name == $n) | (.firewall.tables // [])[] | .name as $t
		| (.chains // [])[] | (.rules // [])[] | "\($t) \(.text)"' --arg n "$1" | sort
}

# check_firewall SELECT: every rule of every netns that SELECT (grep -E) picks
# ("encrypted": only the encrypted overlay's -m bpf / -m policy rules,
# "other": all the rest) reads as iptables-save prints it, and no text output
# shows a hex dump.
check_firewall() {
	[[ -s $OUT/inspect.out ]] || mt inspect inspect -o json || fail "meshtrace inspect exited $?"
	local ns got truth sel=$1 n=0 pat='-m (bpf|policy) '
	for ns in host $(docker_netns_names); do
		if [[ $sel == encrypted ]]; then
			truth=$(fw_rules_truth "$ns" | grep -E -- "$pat" || true)
			got=$(fw_rules_mt "$ns" | grep -E -- "$pat|bpf|policy" || true)
		else
			truth=$(fw_rules_truth "$ns" | grep -vE -- "$pat" || true)
			got=$(fw_rules_mt "$ns" | grep -vE -- "$pat|bpf|policy" || true)
		fi
		n=$((n + $(grep -c . <<<"$truth" || true)))
		diff <(echo "$got") <(echo "$truth") >"$OUT/firewall-$sel-$ns.diff" ||
			mismatch "rules of $ns differ from iptables-save (outputs/firewall-$sel-$ns.diff: $(grep -c '^[<>]' "$OUT/firewall-$sel-$ns.diff") lines)"
	done
	((n > 0)) || fail "iptables-save shows no $sel rule anywhere"
	echo "$n $sel rules compared"
	if [[ $sel == encrypted ]]; then
		mt inspect-text inspect || fail "meshtrace inspect exited $?"
		! grep -qE '[0-9a-fA-F]{64}' "$OUT/inspect-text.out" ||
			mismatch "inspect's text shows a hex dump: $(grep -oE '.{0,40}[0-9a-fA-F]{64}' "$OUT/inspect-text.out" | head -1)"
	fi
}

# check_ew_unreachable NAME SERVICE NETWORK: the caller has no leg in NETWORK:
# path --vip to SERVICE's VIP there must be broken (exit 3) with a
# vip-unreachable break, never complete (the traffic is not answered:
# check_scenario).
check_ew_unreachable() {
	local name=$1 vip cns rc=0
	vip=$(service_vip "$2" "$3")
	cns=$(task_netns caller)
	[[ -n $vip && -n $cns ]] || fail "no $2 VIP on $3 or caller netns"
	mt "$name" path --vip "$vip" --netns "$cns" --port 80 -o json || rc=$?
	[[ -s $OUT/$name.out ]] || fail "meshtrace path --vip exited $rc with no output: $(tail -1 "$OUT/$name.err")"
	want "complete" "$(jqr "$name" .complete)" false
	want "exit status" "$rc" 3
	want "break code" "$(jqr "$name" '[.hops[] | select(.kind == "break") | .code] | last // ""')" vip-unreachable
}

# check_trace_flooded: trace --probe right after the ingress overlay's
# bridge forgot the tasks' MACs (its dynamic FDB entries flushed, as 300 s of
# idleness does): the first frame to the chosen task is flooded to every
# task's veth. The trace must still follow the task that IPVS chose and that
# answered, not a copy that another task's netns received and dropped.
check_trace_flooded() {
	local ovl cid
	ovl=$(overlay_netns ingress)
	ns_exec "$ovl" bridge fdb flush dev br0 dynamic || fail "bridge fdb flush in $ovl failed"
	mt trace-flooded trace --proto tcp --port 8080 --probe --count 1 --timeout 30s -o json ||
		fail "meshtrace trace exited $?: $(tail -1 "$OUT/trace-flooded.err")"
	echo "netns seen: $(jqr trace-flooded '[.flows[0].hops[].netns] | unique | join(" ")')"
	# The case is set up only if the bridge flooded: the request left the
	# overlay bridge on more than one port.
	(($(jqr trace-flooded "[.flows[0].hops[] | select(.netns == \"$ovl\" and .dir == \"out\")] | length") > 1)) ||
		fail "the ingress overlay's bridge did not flood the request (the check did not set up its case)"
	trace_validate trace-flooded tcp 8080
	# The packet entered one task, the chosen backend's; the flooded copies
	# that other tasks' netns received (and dropped) are not hops of it.
	local bns tasks
	bns=$(jqr trace-flooded '.flows[0].backend.netns')
	tasks=$(for cid in $(service_containers web); do container_netns "$cid"; done)
	want "task netns the request entered" \
		"$(jqr trace-flooded '[.flows[0].hops[] | select(.dir == "in") | .netns] | unique | .[]' | grep -xF "$tasks" | paste -sd' ')" "$bns"
}

# check_netdb: the east-west answers against dockerd's network DB (`docker
# network inspect --verbose`): each path's VIP and backends are the
# service's VIP and task endpoints there; rr (dnsrr) has no VIP there.
check_netdb() {
	local q out svc net db
	for q in east-west-caller-api:api:appnet east-west-rr-sapi:sapi:secnet; do
		IFS=: read -r out svc net <<<"$q"
		[[ -s $OUT/$out.out ]] || fail "no outputs/$out.out (its check failed?)"
		db=$(docker network inspect --verbose "$net")
		want "VIP of $svc on $net" "$(jqr "$out" .vip)" "$(jq -r --arg s "$svc" '.[0].Services[$s].VIP' <<<"$db")"
		want_set "backends of $svc on $net" "$(jqr "$out" '.backends[].ip')" \
			"$(jq -r --arg s "$svc" '.[0].Services[$s].Tasks[].EndpointIP' <<<"$db")"
	done
	for net in appnet secnet; do
		want "VIP of rr on $net (dnsrr)" \
			"$(docker network inspect --verbose "$net" | jq -r '.[0].Services.rr.VIP | if . == "<nil>" or . == "" then "none" else . end')" none
	done
}

# --- bundles ------------------------------------------------------------------------

# roles NAME: "netns role" per namespace of an inspect answer.
roles() { jqr "$1" '.namespaces[] | "\(.name) \(.role)"' | sort; }

# bundle_paths KIND DIR: path 8080 and both east-west paths from bundle DIR,
# each compared with the live answer of the same query.
bundle_paths() {
	local kind=$1 dir=$2 q live
	for q in "8080:path-tcp-8080:--port 8080" \
		"ew-appnet:east-west-caller-api:--vip $(service_vip api appnet) --netns $(task_netns caller) --port 80" \
		"ew-secnet:east-west-rr-sapi:--vip $(service_vip sapi secnet) --netns $(task_netns rr) --port 80"; do
		local tag=${q%%:*} rest=${q#*:}
		live=${rest%%:*}
		[[ -s $OUT/$live.out ]] || fail "no live answer outputs/$live.out (its check failed?)"
		# shellcheck disable=SC2086 # the arguments are words
		mt "$kind-$tag" path --from "$dir" ${rest#*:} -o json ||
			mismatch "$kind path $tag exited $?: $(tail -1 "$OUT/$kind-$tag.err")"
		diff <(path_norm "$OUT/$live.out") <(path_norm "$OUT/$kind-$tag.out") >"$OUT/$kind-$tag.diff" ||
			mismatch "$kind bundle: path $tag differs from live (outputs/$kind-$tag.diff)"
	done
}

# check_bundle_collect: `meshtrace collect`'s bundle gives the live answers:
# roles, path 8080, both east-west paths, doctor.
check_bundle_collect() {
	local dir=$OUT/bundle-collect
	rm -rf "$dir"
	mt collect collect "$dir" || fail "collect exited $?: $(tail -1 "$OUT/collect.err")"
	mt collect-inspect inspect --from "$dir" -o json || fail "inspect --from exited $?"
	want "roles" "$(roles collect-inspect | paste -sd,)" "$(roles inspect | paste -sd,)"
	bundle_paths collect "$dir"
	mt collect-doctor doctor --from "$dir" -o json || true
	want "doctor findings above info" "$(doctor_serious collect-doctor)" ""
}

# check_bundle_plain: the bundle of plain commands (ip addr, iptables-save,
# ipvsadm -Ln, plain docker inspect) gives the live answers.
check_bundle_plain() {
	local dir=$OUT/bundle-plain
	rm -rf "$dir"
	record_plain_bundle "$dir"
	bundle_paths plain "$dir"
	mt plain-doctor doctor --from "$dir" -o json || true
	want "doctor findings above info" "$(doctor_serious plain-doctor)" ""
}

# check_plain_roles: the roles read from plain `ip addr` are the live ones.
check_plain_roles() {
	[[ -d $OUT/bundle-plain ]] || fail "no plain bundle (bundle-plain failed?)"
	mt plain-inspect inspect --from "$OUT/bundle-plain" -o json || fail "inspect --from exited $?"
	want_set "roles" "$(roles plain-inspect | tr ' ' '=')" "$(roles inspect | grep -v '^mtclient ' | tr ' ' '=')"
}

# check_listing_bundle: the plain bundle with `iptables -t T -L -n -v` per
# table (iptables-T.txt) instead of iptables-save gives the same path 8080.
check_listing_bundle() {
	local dir=$OUT/bundle-listing ns t
	[[ -d $OUT/bundle-plain ]] || fail "no plain bundle (bundle-plain failed?)"
	rm -rf "$dir"
	cp -a "$OUT/bundle-plain" "$dir"
	for ns in "$dir"/netns/*; do
		rm "$ns/iptables-save.txt"
		for t in filter nat mangle raw; do
			ns_exec "$(basename "$ns")" iptables -t "$t" -L -n -v >"$ns/iptables-$t.txt"
		done
	done
	mt listing-path path --from "$dir" --port 8080 -o json ||
		fail "path --from a -L bundle exited $?: $(tail -1 "$OUT/listing-path.err")"
	diff <(path_norm "$OUT/path-tcp-8080.out") <(path_norm "$OUT/listing-path.out") >"$OUT/listing-path.diff" ||
		mismatch "path 8080 from the -L bundle differs from live (outputs/listing-path.diff)"
}

# check_missing_data: the collected bundle without ingress_sbox's
# iptables-save: path is neither complete (0) nor broken (3) but unknown,
# and doctor blames nothing (nothing at warning or error).
check_missing_data() {
	local dir=$OUT/bundle-missing rc=0
	[[ -d $OUT/bundle-collect ]] || fail "no collected bundle (bundle-collect failed?)"
	rm -rf "$dir"
	cp -a "$OUT/bundle-collect" "$dir"
	rm "$dir/netns/ingress_sbox/iptables-save.txt"
	mt missing-path path --from "$dir" --port 8080 -o json || rc=$?
	want "complete" "$(jqr missing-path .complete 2>/dev/null)" false
	[[ $rc != 0 && $rc != 3 ]] || mismatch "path exit status $rc: 0 is complete, 3 broken; not collected is neither"
	mt missing-doctor doctor --from "$dir" -o json || true
	want "doctor findings above info" "$(doctor_serious missing-doctor)" ""
}

main() {
	checks_begin_nodocker
	check nodocker-run check_nodocker_run
	check nodocker-lsmod check_nodocker_lsmod
	docker_up || return 1
	warm_traffic 1 >"$OUT/warm.log" 2>&1
	check scenario check_scenario
	check inspect check_inspect
	check docker-meta check_docker_meta
	check ipvs check_ipvs
	check dnsrr check_dnsrr
	check firewall check_firewall other
	check firewall-encrypted check_firewall encrypted
	check path-tcp-8080 check_path tcp 8080
	check path-unpublished check_unpublished
	check east-west-appnet check_east_west caller api appnet
	check east-west-secnet check_east_west rr sapi secnet
	check netdb check_netdb
	check ew-unreachable check_ew_unreachable ew-unreachable sapi secnet
	check ew-unreachable-ingress check_ew_unreachable ew-unreachable-ingress web ingress
	check doctor check_doctor
	warm_published
	check trace-tcp-8080 check_trace tcp 8080
	check trace-client-tcp-8080 check_trace_client tcp 8080
	check trace-flooded check_trace_flooded
	check bundle-collect check_bundle_collect
	check docker-sees check_docker_sees
	check bundle-plain check_bundle_plain
	check plain-roles check_plain_roles
	check listing-bundle check_listing_bundle
	check missing-data check_missing_data
	! grep -q '^FAIL' "$RESULTS"
}

# checks_begin_nodocker: check.sh's checks_begin, without traffic (no dockerd yet).
checks_begin_nodocker() {
	command -v meshtrace >/dev/null || fail "no meshtrace binary on PATH"
	meshtrace --version >"$OUT/version.txt" 2>&1 || true
}

main "$@"
