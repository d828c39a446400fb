#!/usr/bin/env bash
# The two-node swarm-vm e2e suite (for .ci/run): builds a static meshtrace,
# boots the two-node swarm of `scripts/swarm-vm run2` (two qemu guests joined
# over a socket network on 127.0.0.1; the routing mesh crosses real VXLAN)
# and runs e2e/vm/check2.sh in both nodes. Prints each check's result and,
# last, one line:
#   swarm-vm2-e2e: N passed, M failed
# Exits non-zero when a check failed or the suite could not run. It is
# run.sh's two-node mode; see run.sh for the environment.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" --two-nodes "$@"
