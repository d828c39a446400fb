#!/usr/bin/env bash
# The swarm-vm e2e suite (for .ci/run): builds a static meshtrace, boots the
# real swarm node of scripts/swarm-vm and runs e2e/vm/check.sh inside it.
# Prints each check's result and, last, one line:
#   swarm-vm-e2e: N passed, M failed
# Exits non-zero when a check failed or the suite could not run.
#
# Environment: MT_E2E_OUT keeps the outputs there (default: a temporary dir,
# removed on success); the MT_VM_* variables of scripts/swarm-vm.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/e2e/vm
# CI's budget for the whole suite: well under 15 minutes of VM time.
export MT_VM_TIMEOUT=${MT_VM_TIMEOUT:-780}
export MT_VM_JOB_TIMEOUT=${MT_VM_JOB_TIMEOUT:-420}
export MT_VM_WAIT_TIMEOUT=${MT_VM_WAIT_TIMEOUT:-300}

OUT=${MT_E2E_OUT:-}
KEEP=1
if [[ -z $OUT ]]; then
	OUT=$(mktemp -d /var/tmp/meshtrace-e2e.XXXXXX)
	KEEP=0
fi
mkdir -p "$OUT"

summary() {
	echo "swarm-vm-e2e: $1 passed, $2 failed"
}

# build_meshtrace: a static binary, as the VM has none of our libraries.
build_meshtrace() {
	(cd "$ROOT" && CGO_ENABLED=0 go build -o "$OUT/meshtrace" ./cmd/meshtrace)
}

main() {
	local start=$SECONDS rc=0 passed failed
	echo "swarm-vm e2e: building meshtrace"
	if ! build_meshtrace >"$OUT/build.log" 2>&1; then
		tail -20 "$OUT/build.log"
		echo "FAIL build: CGO_ENABLED=0 go build ./cmd/meshtrace failed"
		summary 0 1
		return 1
	fi
	"$ROOT/scripts/swarm-vm" run "$OUT/meshtrace" "$HERE/check.sh" "$OUT/vm" "$HERE/truth.sh" || rc=$?
	if [[ ! -f $OUT/vm/results.txt ]]; then
		echo "FAIL swarm-vm: the checks did not run (status $rc); logs in $OUT/vm/vm-logs"
		KEEP=1
		summary 0 1
		return 1
	fi
	echo "swarm-vm e2e results:"
	cat "$OUT/vm/results.txt"
	passed=$(grep -c '^PASS' "$OUT/vm/results.txt" || true)
	failed=$(grep -c '^FAIL' "$OUT/vm/results.txt" || true)
	((failed == 0 && rc == 0)) || KEEP=1
	if ((KEEP)); then
		echo "swarm-vm e2e: took $((SECONDS - start))s; outputs in $OUT/vm/outputs, VM logs in $OUT/vm/vm-logs"
	else
		echo "swarm-vm e2e: took $((SECONDS - start))s"
		rm -rf "$OUT"
	fi
	summary "$passed" "$failed"
	((failed == 0 && rc == 0))
}

main "$@"
