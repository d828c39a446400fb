// Package source is meshtrace's one loading path. It reads a node (this host
// live, a bundle directory, or a node of the built-in mesh), joins Docker's
// metadata (the engine's answer, the bundle's JSON, or the mesh's state),
// attaches it to the namespaces and classifies their roles: each once, in
// that order. The commands, the TUI and the tests all load through it.
package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/topology"
)

// Spec says where a model comes from: a bundle (Bundle), a node of the
// built-in mesh (Mesh and Node), else this host, live.
type Spec struct {
	// Bundle is a bundle directory (`--from DIR`).
	Bundle string
	// Skip, for a bundle, names the files of its namespace folders not to
	// read (inspect.BundleOptions.Skip; nil: read them all).
	Skip func(netns, file string) bool
	// Mesh names a built-in mesh (`--mesh NAME`) and Node its node
	// ("" = node0).
	Mesh, Node string

	// The live reads (this host, or a mesh node):
	//
	// HostNetns and NetnsDirs replace this host's root namespace and
	// namespace directories (a test's world; "" and nil: the host's).
	HostNetns string
	NetnsDirs []string
	// Firewall is the firewall reader's mode ("" = auto).
	Firewall inspect.FirewallMode
	// NoConntrack skips the conntrack tables.
	NoConntrack bool
	// Counters reads every namespace's counters too (topology.Counters:
	// what `meshtrace diff` compares with a bundle's).
	Counters bool
	// Modules is the module gate (nil: this host's, which skips a read
	// that would load a missing module; kmod.Allow{} for
	// --allow-module-load).
	Modules kmod.Gate
}

// ErrExclusive is Check's answer to a bundle and a mesh at once.
var ErrExclusive = errors.New("--from and --mesh are exclusive")

// Check reports a Spec that names two sources.
func (s Spec) Check() error {
	if s.Bundle != "" && s.Mesh != "" {
		return ErrExclusive
	}
	return nil
}

// Live reports whether the source is read from the kernel (this host or a
// mesh node), not from files.
func (s Spec) Live() bool { return s.Bundle == "" }

// node is the mesh node, node0 when none is named.
func (s Spec) node() string {
	if s.Node == "" {
		return "node0"
	}
	return s.Node
}

// String names the source as the model's Source does: "bundle:DIR",
// "mesh:NAME/NODE", "this host".
func (s Spec) String() string {
	switch {
	case s.Bundle != "":
		return "bundle:" + s.Bundle
	case s.Mesh != "":
		return fmt.Sprintf("mesh:%s/%s", s.Mesh, s.node())
	}
	return "this host"
}

// Load reads the source into a classified model: the namespaces and their
// state, Docker's metadata attached to them, every namespace's role.
func Load(ctx context.Context, s Spec) (*topology.Model, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	m, err := read(ctx, s)
	if err != nil {
		return nil, err
	}
	topology.AnnotateDocker(m)
	topology.Classify(m)
	return m, nil
}

// read reads the source and joins Docker's metadata, unannotated.
func read(ctx context.Context, s Spec) (*topology.Model, error) {
	if s.Bundle != "" {
		return inspect.BundleWith(s.Bundle, inspect.BundleOptions{Skip: s.Skip}) // with the bundle's docker/*.json
	}
	if err := needLinux(); err != nil {
		return nil, err
	}
	o := inspect.Options{HostNetns: s.HostNetns, NetnsDirs: s.NetnsDirs, Firewall: s.Firewall, Conntrack: !s.NoConntrack, Counters: s.Counters, Modules: s.Modules}
	var st *mesh.State
	if s.Mesh != "" {
		host, dir, err := mesh.Locate(s.Mesh, s.node())
		if err != nil {
			return nil, err
		}
		o.HostNetns, o.NetnsDirs = host, []string{dir}
		// The mesh's state plays the Docker engine's metadata.
		if st, err = mesh.Load("", s.Mesh); err != nil {
			st = nil
		}
	}
	m, err := inspect.Live(ctx, o)
	if err != nil {
		return nil, err
	}
	switch {
	case s.Mesh != "":
		m.Source = s.String()
		if st != nil {
			// What the node's engine would answer, read as real Docker's is.
			if d, derr := inspect.ReadDocker(ctx, st.Engine(s.node())); derr != nil {
				m.Notes = append(m.Notes, "docker: "+derr.Error())
			} else {
				m.Docker = d.Meta()
			}
		}
	case s.HostNetns == "":
		// This host: its engine, when one answers.
		if d, derr := inspect.DockerLive(ctx); derr != nil {
			m.Notes = append(m.Notes, "docker: "+derr.Error())
		} else if d != nil {
			m.Docker = d
		}
	}
	return m, nil
}
