#!/usr/bin/env bash
# The two-node Docker 28 swarm-vm e2e suite (for .ci/run): builds a static
# meshtrace, boots the two-node swarm of `scripts/swarm-vm --suite forky run2`
# (Debian forky's docker.io 28, trixie's kernel 6.12, iptables-nft; two qemu
# guests joined over a socket network on 127.0.0.1) and runs
# e2e/vm/check28-2.sh in both nodes: the routing mesh across real VXLAN, an
# encrypted overlay with its faults esp-blocked and xfrm-missing, and swarm
# collect through a global job. Prints each check's result and, last, one line:
#   swarm-vm28-2-e2e: N passed, M failed
# Exits non-zero when a check failed or the suite could not run. It is
# run.sh's --docker28-two-nodes mode; see run.sh for the environment.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" --docker28-two-nodes "$@"
