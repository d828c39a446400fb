package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/meshtrace/meshtrace/internal/probe"
	"github.com/meshtrace/meshtrace/mesh"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/capture"
)

// probeFunc returns doctor's live probe for the source: one request per
// published port, from the mesh's client to the node's LAN address (an
// HTTP GET for tcp, a datagram for udp, each must be answered by a task;
// as many as the service has tasks, so that each backend gets one),
// or, on this host, to 127.0.0.1 (tcp: the handshake must complete, the
// application's protocol is unknown; udp: only an ICMP "port unreachable"
// counts as a failure, since a server may rightly ignore the probe's
// datagram: probe.Reached).
//
// Each probe is framed by counter snapshots of the node's namespaces
// (every node's with --mesh): a probe that fails names the drop counters
// that moved meanwhile (lossProbe).
func probeFunc(ctx context.Context, src *sourceFlags, timeout time.Duration, m *topology.Model) (func(proto string, port int) error, error) {
	p, nodes, err := rawProbe(ctx, src, timeout)
	if err != nil {
		return nil, err
	}
	primary := ""
	if src.meshName != "" {
		primary = src.node
	}
	return lossProbe(ctx, source.Counters{Spec: src.spec()}, nodes, m, primary, p), nil
}

// lossProbe frames each probe with counter snapshots of the nodes' every
// namespace; the error of a probe that fails says which drop counters
// moved meanwhile, best first (trace.Causes: the packets lost are not
// counted, so the counters are matched by kind only), or that none did.
func lossProbe(ctx context.Context, r capture.CounterReader, nodes []string, m *topology.Model, primary string,
	p func(proto string, port int) error) func(proto string, port int) error {
	names := map[string][]string{}
	for _, n := range nodes {
		names[n] = nil
	}
	env := &trace.Env{Nodes: []*trace.Node{{Name: primary, Model: m}}}
	return func(proto string, port int) error {
		var notes []string
		before := capture.SnapCounters(ctx, r, names, &notes)
		err := p(proto, port)
		if err == nil {
			return nil
		}
		w := capture.Window(before, capture.SnapCounters(ctx, r, names, &notes))
		var scope []trace.NsRef
		for k := range w.Read {
			node, netns, _ := strings.Cut(k, "/")
			scope = append(scope, trace.NsRef{Node: node, Netns: netns})
		}
		slices.SortFunc(scope, func(a, b trace.NsRef) int { return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.Netns, b.Netns)) })
		win := w.End.Sub(w.Start).Round(time.Millisecond)
		cs := trace.Causes(scope, 0, errors.Is(err, syscall.ECONNREFUSED), w, env)
		switch {
		case len(w.Read) == 0:
			return fmt.Errorf("%w; counters not collected (%s)", err, strings.Join(notes, "; "))
		case len(cs) == 0:
			return fmt.Errorf("%w; no drop counter of the %d namespaces read moved in %s", err, len(w.Read), win)
		}
		ev := make([]string, 0, len(cs))
		for _, c := range cs {
			ev = append(ev, fmt.Sprintf("%s (%s)", c.Evidence, c.Code))
		}
		return fmt.Errorf("%w; in %s, consistent with %s", err, win, strings.Join(ev, ", "))
	}
}

// rawProbe is the probe itself, and the nodes whose counters frame it.
func rawProbe(ctx context.Context, src *sourceFlags, timeout time.Duration) (func(proto string, port int) error, []string, error) {
	if timeout <= 0 {
		return nil, nil, fmt.Errorf("--probe-timeout %s: must be positive", timeout)
	}
	switch {
	case src.from != "":
		return nil, nil, errors.New("--probe needs a live source (this host or --mesh), not a bundle")
	case src.meshName != "":
		if err := needRoot("doctor --probe --mesh"); err != nil {
			return nil, nil, err
		}
		st, err := mesh.Load("", src.meshName)
		if err != nil {
			return nil, nil, err
		}
		var ip netip.Addr
		var nodes []string
		for _, n := range st.Nodes {
			if n.Name == src.node {
				ip = n.IP
			}
			nodes = append(nodes, n.Name)
		}
		if !ip.IsValid() {
			return nil, nil, fmt.Errorf("mesh %s: no node %q", src.meshName, src.node)
		}
		return func(proto string, port int) error {
			// One request per task: the balancer takes turns, so each
			// backend (a remote one too) gets one.
			n := 1
			for _, s := range st.Services {
				if s.Proto == proto && s.Published == port && len(s.Tasks) > n {
					n = len(s.Tasks)
				}
			}
			addr := netip.AddrPortFrom(ip, uint16(port)).String()
			for range n {
				ctx, cancel := context.WithTimeout(ctx, timeout)
				r, err := mesh.Ask(ctx, st.Client.Netns, proto, addr, "/")
				cancel()
				if err != nil {
					return fmt.Errorf("from the mesh's client to %s/%s: %w", proto, addr, err)
				}
				if r.Task == "" {
					return fmt.Errorf("from the mesh's client to %s/%s: an empty answer", proto, addr)
				}
			}
			return nil
		}, nodes, nil
	}
	return func(proto string, port int) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
		_, err := probe.Do(ctx, probe.Request{Proto: proto, To: to, Payload: "meshtrace doctor probe\n", Mode: probe.Reached})
		return err
	}, []string{""}, nil
}
