#!/usr/bin/env bash
# The Docker 28 swarm-vm e2e suite (for .ci/run): builds a static meshtrace,
# boots the node of `scripts/swarm-vm --suite forky` (Debian forky's docker.io
# 28, trixie's kernel 6.12, iptables-nft) without dockerd, and runs
# e2e/vm/check28.sh in it (issue 18's module check first, then it starts
# dockerd and checks meshtrace against dockerd's answers, live and from
# bundles). Prints each check's result and, last, one line:
#   swarm-vm28-e2e: N passed, M failed
# Exits non-zero when a check failed or the suite could not run. It is
# run.sh's --docker28 mode; see run.sh for the environment.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh" --docker28 "$@"
