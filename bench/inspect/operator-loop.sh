#!/bin/sh
# The loop an operator types to see a Swarm node's packet plumbing without
# meshtrace: the rules and addresses of every namespace, then the IPVS
# table. bench/inspect times it against meshtrace's live reader in the
# same run. Arguments are `ip netns` names (the bench links its
# namespaces into /run/netns, as operators do with
# `ln -s /run/docker/netns/* /run/netns/`). ipvsadm fails on a kernel
# without IPVS; it stays in: it is what they would type.
for ns in "$@"; do
	ip netns exec "$ns" iptables-save
	ip -n "$ns" addr
done
ipvsadm -Ln
