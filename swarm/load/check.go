package load

import (
	"context"
	"strings"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/topology"
)

// CheckDir is Dir reading of each bundle what swarm.Checker compares and
// what the namespaces' roles are decided on (checkSkip), not the rest: a
// node of fifty is read in a fraction of the time. Where what it skipped
// turns out to bear on the roles (checkNeeds), that node is read whole
// again: the check never compares or reports from a file left unread.
func CheckDir(ctx context.Context, dir string, fn func(swarm.Node)) error {
	return walk(ctx, dir, func(ctx context.Context, bundle string) (*topology.Model, error) {
		m, err := source.Load(ctx, source.Spec{Bundle: bundle, Skip: checkSkip})
		if err != nil || checkComplete(m) {
			return m, err
		}
		return source.Load(ctx, source.Spec{Bundle: bundle})
	}, fn)
}

// neverChecked are the files of a namespace folder neither the check nor
// the roles read anywhere: sockets, conntrack, IPVS's timeouts, the
// counters, the legacy backend's rules.
var neverChecked = map[string]bool{
	inspect.BundleSockets: true, inspect.BundleConntrack: true, inspect.BundleIPVSTimeout: true,
	inspect.BundleSNMP: true, inspect.BundleNetstat: true, inspect.BundleConntrackStat: true,
	inspect.BundleLinkStats: true, inspect.BundleIPVSStats: true, inspect.BundleIptablesLegacy: true,
}

// hostOnly are the files the check reads of the host namespace only (its
// routes for topology.NodeAddress, its xfrm state for the SPI check).
var hostOnly = map[string]bool{inspect.BundleRoutes: true, inspect.BundleXfrmState: true, inspect.BundleXfrmPolicy: true}

// checkSkip is what CheckDir does not read: neverChecked everywhere,
// hostOnly outside the host, and the firewall and sysctls of a folder
// named as Docker names a container's sandbox (12 hex digits): a task's,
// which the check does not compare. checkComplete says whether that
// last guess held.
func checkSkip(netns, file string) bool {
	switch {
	case neverChecked[file]:
		return true
	case netns == inspect.BundleHost:
		return false
	case hostOnly[file]:
		return true
	}
	return containerKey(netns) && (file == inspect.BundleSysctl || strings.HasPrefix(file, "iptables-"))
}

// containerKey: a name like the key of a container's sandbox
// (/var/run/docker/netns/<12 hex>).
func containerKey(name string) bool {
	if len(name) != 12 {
		return false
	}
	for _, r := range name {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// checkComplete reports whether m, read with checkSkip, holds all the
// check needs. The firewall and sysctls of a namespace are compared only
// for a load balancer (the ingress sandbox, an lb_); they decide the role
// of a namespace Docker names as a container's sandbox only when Classify
// did not find the ingress sandbox by an address (it falls back on the
// namespaces' load balancing). So every folder whose firewall or sysctls
// were skipped must be a container's sandbox by Docker's word, in a role
// the check reads no firewall of, with the sandbox found by address.
func checkComplete(m *topology.Model) bool {
	skipped := false
	for _, ns := range m.Namespaces {
		if !containerKey(ns.Name) {
			continue
		}
		skipped = true
		if ns.Docker == nil || ns.Docker.Container == "" {
			return false
		}
		switch ns.Role {
		case topology.RoleTask, topology.RoleOther, topology.RoleUnknown:
		default:
			return false
		}
	}
	return !skipped || topology.SandboxByAddress(m)
}
