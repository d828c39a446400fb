// Package load reads the nodes of a swarm for package swarm through package
// source: the node bundles of a directory (as `meshtrace swarm collect`
// writes them, or as gathered by hand) or every node of the built-in mesh.
package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/safefile"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/swarm"
	"github.com/meshtrace/meshtrace/topology"
)

// maxManifest bounds DIR/swarm.json.
const maxManifest = 16 << 20

// Dir reads every node bundle under dir and hands each to fn: each
// subdirectory holding a bundle (netns/host) is a node named after it. The
// nodes dir/swarm.json lists as not collected come too, without a model
// (every check "not checked" there). The bundles are read in parallel, and
// fn is called from several goroutines at once; a model fn does not keep
// is dropped (swarm.Checker.Add keeps what it compares).
func Dir(ctx context.Context, dir string, fn func(swarm.Node)) error {
	return walk(ctx, dir, func(ctx context.Context, bundle string) (*topology.Model, error) {
		return source.Load(ctx, source.Spec{Bundle: bundle})
	}, fn)
}

// walk is Dir, each bundle read by read.
func walk(ctx context.Context, dir string, read func(ctx context.Context, bundle string) (*topology.Model, error), fn func(swarm.Node)) error {
	d, err := safefile.OpenDir(dir, maxManifest)
	if err != nil {
		return fmt.Errorf("swarm %s: %w", dir, err)
	}
	defer d.Close()
	ents, err := d.ReadDir(".")
	if err != nil {
		return fmt.Errorf("swarm %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		st, err := d.Stat(path.Join(e.Name(), inspect.BundleNetnsDir, inspect.BundleHost))
		if err == nil && st.IsDir() {
			names = append(names, e.Name())
		}
	}
	man, err := manifest(d)
	if err != nil {
		return err
	}
	if len(names) == 0 && man == nil {
		return fmt.Errorf("swarm %s: no node bundle in it (a node's bundle is %s)", dir,
			filepath.Join(dir, "NODE", inspect.BundleNetnsDir, inspect.BundleHost))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, name := range names {
		g.Go(func() error {
			m, err := read(gctx, filepath.Join(dir, name))
			if err != nil {
				return fmt.Errorf("node %s: %w", name, err)
			}
			fn(swarm.Node{Name: name, Model: m})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if man != nil {
		have := map[string]bool{}
		for _, n := range names {
			have[n] = true
		}
		for _, mn := range man.Nodes {
			if !have[mn.Name] {
				fn(swarm.Node{Name: mn.Name})
			}
		}
	}
	return nil
}

// Nodes is Dir's nodes, models kept, in name order.
func Nodes(ctx context.Context, dir string) ([]swarm.Node, error) {
	var mu sync.Mutex
	var nodes []swarm.Node
	err := Dir(ctx, dir, func(n swarm.Node) {
		mu.Lock()
		nodes = append(nodes, n)
		mu.Unlock()
	})
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes, err
}

// manifest reads dir's swarm.json, nil when there is none.
func manifest(d *safefile.Dir) (*swarm.Manifest, error) {
	b, err := d.ReadFile(swarm.ManifestFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m swarm.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Join(swarm.ManifestFile), err)
	}
	return &m, nil
}

// Mesh reads every node of the built-in mesh name, live, in the mesh's
// node order.
func Mesh(ctx context.Context, name string, base source.Spec) ([]swarm.Node, error) {
	st, err := mesh.Load("", name)
	if err != nil {
		return nil, err
	}
	nodes := make([]swarm.Node, len(st.Nodes))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, n := range st.Nodes {
		g.Go(func() error {
			s := base
			s.Bundle, s.Mesh, s.Node = "", name, n.Name
			m, err := source.Load(gctx, s)
			if err != nil {
				return fmt.Errorf("mesh %s node %s: %w", name, n.Name, err)
			}
			nodes[i] = swarm.Node{Name: n.Name, Model: m}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return nodes, nil
}
