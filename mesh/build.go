package mesh

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// Steps of building one namespace, in order. Up calls Options.Hook with
// "STEP KEY" before each (e.g. "veths node0/ingress_sbox"; firewall only
// for namespaces with rules or IPVS), and with "agent" before starting the
// agent.
var Steps = []string{"netns", "devices", "veths", "config", "firewall"}

// build runs every namespace's steps (create, devices, veths, config =
// addresses, routes, neighbours, FDB, sysctls; then firewall = iptables-
// restore and IPVS) as soon as what they need exists. At most limit
// namespaces are in their kernel steps at once (namespace creation and
// rtnetlink, which the kernel serialises anyway); a namespace leaves that
// pool before its iptables-restore run, which mostly waits for nf_tables
// commits, so up to restoreLimit of those overlap with the kernel steps of
// the next namespaces.
//
// Dependencies: a VXLAN device is created in its node's host namespace,
// so the overlay waits for that namespace to exist; a veth's peer is
// enslaved to a bridge in the peer namespace, so veths wait for the
// peer's devices. specs must list every namespace after those it depends
// on (Plan.Netns does) and slots are taken in that order, so a namespace
// only ever waits for one that already has (or had) a slot: the bounded
// pool cannot deadlock.
func build(ctx context.Context, sys System, specs []*NetnsSpec, limit int, hook func(string) error) error {
	type progress struct{ created, devices chan struct{} }
	prog := map[string]*progress{}
	for _, ns := range specs {
		prog[ns.Path] = &progress{make(chan struct{}), make(chan struct{})}
	}
	g, gctx := errgroup.WithContext(ctx)
	kernel := semaphore.NewWeighted(int64(limit))
	restore := semaphore.NewWeighted(int64(restoreLimit(limit)))
	wait := func(path string, which func(*progress) chan struct{}) error {
		p, ok := prog[path]
		if !ok {
			return fmt.Errorf("depends on %s, which is not part of the mesh", path)
		}
		select {
		case <-which(p):
			return nil
		case <-gctx.Done():
			return gctx.Err()
		}
	}
	created := func(p *progress) chan struct{} { return p.created }
	devices := func(p *progress) chan struct{} { return p.devices }

	for _, ns := range specs {
		if err := kernel.Acquire(gctx, 1); err != nil {
			break
		}
		g.Go(func() error {
			inKernel := true
			leaveKernel := func() {
				if inKernel {
					kernel.Release(1)
					inKernel = false
				}
			}
			defer leaveKernel()
			// step runs fn, holding a slot of pool if not nil (the
			// kernel steps run on the slot the job already holds).
			step := func(name string, pool *semaphore.Weighted, fn func() error) error {
				if hook != nil {
					if err := hook(name + " " + ns.Key); err != nil {
						return fmt.Errorf("before %s: %w", name, err)
					}
				}
				if pool != nil {
					if err := pool.Acquire(gctx, 1); err != nil {
						return err
					}
					defer pool.Release(1)
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := fn(); err != nil {
					return fmt.Errorf("%s: %s: %w", ns.Key, name, err)
				}
				return nil
			}
			p := prog[ns.Path]
			if err := step("netns", nil, func() error { return sys.CreateNetns(ns.Path) }); err != nil {
				return err
			}
			close(p.created)
			if ns.VXLAN != nil {
				if err := wait(ns.VXLAN.CreateIn, created); err != nil {
					return err
				}
			}
			if err := step("devices", nil, func() error { return sys.Devices(ns) }); err != nil {
				return err
			}
			close(p.devices)
			for _, v := range ns.Veths {
				if err := wait(v.PeerPath, devices); err != nil {
					return err
				}
			}
			if err := step("veths", nil, func() error { return sys.Veths(ns) }); err != nil {
				return err
			}
			if err := step("config", nil, func() error { return sys.Configure(ns) }); err != nil {
				return err
			}
			leaveKernel()
			if ns.Rules == "" && len(ns.IPVS) == 0 {
				return nil
			}
			return step("firewall", restore, func() error {
				if ns.Rules != "" {
					if err := sys.Firewall(ns.Path, ns.Rules); err != nil {
						return err
					}
				}
				if len(ns.IPVS) > 0 {
					return sys.IPVS(ns.Path, ns.IPVS)
				}
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// restoreLimit is how many iptables-restore processes run at once: they
// spend most of their time waiting for the kernel, not on a CPU.
func restoreLimit(limit int) int {
	return max(32, 4*limit)
}
