package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
)

// sourceFlags select where a model comes from: this host live (default), a
// bundle (--from DIR) or a node of the built-in mesh (--mesh NAME --node NODE).
type sourceFlags struct {
	from, meshName, node string
	firewall             string
	noConntrack          bool
	allowModules         bool
}

func (s *sourceFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&s.from, "from", "", "read a bundle directory (as written by `meshtrace collect`) instead of this host")
	f.StringVar(&s.meshName, "mesh", "", "read a node of the built-in mesh NAME (with --node)")
	f.StringVar(&s.node, "node", "node0", "the mesh node to read (with --mesh)")
	f.StringVar(&s.firewall, "firewall", "auto", "live firewall reader: auto (nf_tables in-process, iptables-save for legacy), exec (iptables-save -c), netlink")
	f.BoolVar(&s.noConntrack, "no-conntrack", false, "do not read conntrack tables")
	f.BoolVar(&s.allowModules, "allow-module-load", false, allowModulesHelp)
	c.MarkFlagDirname("from")
}

// allowModulesHelp is --allow-module-load's help, for every reading command.
const allowModulesHelp = "let live reads load the kernel modules they use (ip_vs, nf_tables, nf_conntrack_netlink, " +
	"inet_diag, ...); by default a read that would load a missing module is skipped and a note says so"

// modules is the module gate of the live readers: nil (the host's, which
// skips reads that would load a module) or, with --allow-module-load,
// kmod.Allow{}.
func (s *sourceFlags) modules() kmod.Gate {
	if s.allowModules {
		return kmod.Allow{}
	}
	return nil
}

// spec is the flags as a source.
func (s *sourceFlags) spec() source.Spec {
	return source.Spec{Bundle: s.from, Mesh: s.meshName, Node: s.node, Firewall: inspect.FirewallMode(s.firewall),
		NoConntrack: s.noConntrack, Modules: s.modules()}
}

// load reads the source's model (source.Load).
func (s *sourceFlags) load(ctx context.Context) (*topology.Model, error) {
	return source.Load(ctx, s.spec())
}
