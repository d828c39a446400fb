package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/mesh"
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

// load reads the model and classifies it.
func (s *sourceFlags) load(ctx context.Context) (*topology.Model, error) {
	var (
		m   *topology.Model
		err error
	)
	switch {
	case s.from != "" && s.meshName != "":
		return nil, fmt.Errorf("--from and --mesh are exclusive")
	case s.from != "":
		m, err = inspect.Bundle(s.from)
	default:
		o := inspect.Options{Firewall: s.firewall, Conntrack: !s.noConntrack, Modules: s.modules()}
		if s.meshName != "" {
			host, dir, lerr := mesh.Locate(s.meshName, s.node)
			if lerr != nil {
				return nil, lerr
			}
			o.HostNetns, o.NetnsDirs = host, []string{dir}
		}
		m, err = inspect.Live(ctx, o)
		if err == nil && s.meshName != "" {
			m.Source = fmt.Sprintf("mesh:%s/%s", s.meshName, s.node)
			// The mesh's state plays the Docker engine's metadata.
			if st, lerr := mesh.Load("", s.meshName); lerr == nil {
				m.Docker = st.DockerMeta(s.node)
			}
		}
		if err == nil && s.meshName == "" {
			if d, derr := inspect.DockerLive(ctx); derr != nil {
				m.Notes = append(m.Notes, "docker: "+derr.Error())
			} else if d != nil {
				m.Docker = d
			}
		}
	}
	if err != nil {
		return nil, err
	}
	topology.AnnotateDocker(m)
	topology.Classify(m)
	return m, nil
}
