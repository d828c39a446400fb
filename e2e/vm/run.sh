#!/usr/bin/env bash
# The swarm-vm e2e suite (for .ci/run): builds a static meshtrace, boots the
# real swarm node of scripts/swarm-vm and runs e2e/vm/check.sh inside it.
# Prints each check's result and, last, one line:
#   swarm-vm-e2e: N passed, M failed
# Exits non-zero when a check failed or the suite could not run.
#
#
# With --two-nodes (what e2e/vm/run2.sh runs) it boots the two-node swarm of
# `scripts/swarm-vm run2` instead and runs e2e/vm/check2.sh in both nodes;
# each result is named after its node, and the last line is
#   swarm-vm2-e2e: N passed, M failed
#
# With --docker28 (what e2e/vm/run28.sh runs) it boots the Docker 28 node of
# `scripts/swarm-vm --suite forky` (kernel 6.12, iptables-nft) without
# dockerd started, and runs e2e/vm/check28.sh, which starts it; the last line
# is
#   swarm-vm28-e2e: N passed, M failed
#
# With --docker28-two-nodes (what e2e/vm/run28-2.sh runs) it boots the
# two-node swarm of `scripts/swarm-vm --suite forky run2` (Docker 28) and runs
# e2e/vm/check28-2.sh in both nodes (the two-node mesh, the encrypted overlay
# and its faults, swarm collect); the last line is
#   swarm-vm28-2-e2e: N passed, M failed
# Checks expected to fail today print XFAIL lines and count as neither.
#
# Environment: MT_E2E_OUT keeps the outputs there (default: a temporary dir,
# removed on success); MT_E2E_BINARY runs that static meshtrace instead of
# building this tree's; the MT_VM_* variables of scripts/swarm-vm.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/e2e/vm
# The lane: its name, swarm-vm's command, the job, the job's files, the nodes
# whose results count ("" = the one node, in OUTDIR itself).
LANE=swarm-vm RUN=run JOB=$HERE/check.sh FILES=("$HERE/truth.sh") NODES=("")
case ${1:-} in
--two-nodes)
	LANE=swarm-vm2 RUN=run2 JOB=$HERE/check2.sh FILES=("$HERE/check.sh" "$HERE/truth.sh") NODES=(node0 node1)
	;;
--docker28)
	LANE=swarm-vm28 JOB=$HERE/check28.sh FILES=("$HERE/check.sh" "$HERE/truth.sh")
	export MT_VM_SUITE=forky MT_VM_DOCKER_LATER=1
	# The job starts dockerd and the services itself (1-2 minutes), and
	# checks three bundles: 6-12 minutes on a busy machine.
	export MT_VM_JOB_TIMEOUT=${MT_VM_JOB_TIMEOUT:-1200} MT_VM_TIMEOUT=${MT_VM_TIMEOUT:-1500}
	;;
--docker28-two-nodes)
	LANE=swarm-vm28-2 RUN=run2 JOB=$HERE/check28-2.sh NODES=(node0 node1)
	FILES=("$HERE/check2.sh" "$HERE/check.sh" "$HERE/truth.sh")
	export MT_VM_SUITE=forky
	# node0's checks, then node1's (never both at once), then swarm
	# collect: 8-15 minutes of job on a busy machine.
	export MT_VM_JOB_TIMEOUT=${MT_VM_JOB_TIMEOUT:-1500} MT_VM_TIMEOUT=${MT_VM_TIMEOUT:-1800}
	;;
esac
# CI's budget for the whole suite (45 minutes with every lane): the job takes
# 4-5 minutes on an idle machine, over 7 when other work shares the cores.
export MT_VM_TIMEOUT=${MT_VM_TIMEOUT:-1200}
export MT_VM_JOB_TIMEOUT=${MT_VM_JOB_TIMEOUT:-900}
export MT_VM_WAIT_TIMEOUT=${MT_VM_WAIT_TIMEOUT:-300}

OUT=${MT_E2E_OUT:-}
KEEP=1
if [[ -z $OUT ]]; then
	OUT=$(mktemp -d /var/tmp/meshtrace-e2e.XXXXXX)
	KEEP=0
fi
mkdir -p "$OUT"

summary() {
	echo "$LANE-e2e: $1 passed, $2 failed"
}

# results: every node's results.txt, each line named after its node (two
# nodes), a FAIL for a node whose checks did not run; fails when none ran.
results() {
	local node file ran=0
	for node in "${NODES[@]}"; do
		file=$OUT/vm/${node:+$node/}results.txt
		if [[ ! -f $file ]]; then
			echo "FAIL $node: the checks did not run"
			continue
		fi
		ran=1
		sed -E "${node:+s/^(PASS|FAIL|XFAIL) /\1 $node: /}" "$file"
	done
	((ran))
}

# build_meshtrace: a static binary, as the VM has none of our libraries
# (MT_E2E_BINARY: that one instead, e.g. another branch's).
build_meshtrace() {
	if [[ -n ${MT_E2E_BINARY:-} ]]; then
		cp "$MT_E2E_BINARY" "$OUT/meshtrace"
		return
	fi
	(cd "$ROOT" && CGO_ENABLED=0 go build -o "$OUT/meshtrace" ./cmd/meshtrace)
}

main() {
	local start=$SECONDS rc=0 passed failed logs=$OUT/vm/vm-logs
	((${#NODES[@]} == 1)) || logs="$OUT/vm/node*/vm-logs"
	echo "$LANE e2e: building meshtrace"
	if ! build_meshtrace >"$OUT/build.log" 2>&1; then
		tail -20 "$OUT/build.log"
		echo "FAIL build: CGO_ENABLED=0 go build ./cmd/meshtrace failed"
		summary 0 1
		return 1
	fi
	"$ROOT/scripts/swarm-vm" "$RUN" "$OUT/meshtrace" "$JOB" "$OUT/vm" "${FILES[@]}" || rc=$?
	if ! results >"$OUT/results.txt"; then
		echo "FAIL $LANE: the checks did not run (status $rc); logs in $logs"
		KEEP=1
		summary 0 1
		return 1
	fi
	echo "$LANE e2e results:"
	cat "$OUT/results.txt"
	grep -q '^XFAIL' "$OUT/results.txt" &&
		echo "$LANE e2e: $(grep -c '^XFAIL' "$OUT/results.txt") expected failures (XFAIL: fixed on other branches)"
	# The job itself failing (124: it hit MT_VM_JOB_TIMEOUT, and the checks
	# after that never ran) is a failure of its own, never "0 failed".
	if ((rc != 0)) && ! grep -q '^FAIL' "$OUT/results.txt"; then
		echo "FAIL job: the checks ended with status $rc$( ((rc == 124)) && echo " (MT_VM_JOB_TIMEOUT, ${MT_VM_JOB_TIMEOUT}s)")" |
			tee -a "$OUT/results.txt"
	fi
	passed=$(grep -c '^PASS' "$OUT/results.txt" || true)
	failed=$(grep -c '^FAIL' "$OUT/results.txt" || true)
	((failed == 0 && rc == 0)) || KEEP=1
	if ((KEEP)); then
		echo "$LANE e2e: took $((SECONDS - start))s; outputs in $OUT/vm/${NODES[0]:+node*/}outputs, VM logs in $logs"
	else
		echo "$LANE e2e: took $((SECONDS - start))s"
		rm -rf "$OUT"
	fi
	summary "$passed" "$failed"
	((failed == 0 && rc == 0))
}

main "$@"
