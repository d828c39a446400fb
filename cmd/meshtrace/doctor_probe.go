package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/meshtrace/meshtrace/internal/probe"
	"github.com/meshtrace/meshtrace/mesh"
)

// probeFunc returns doctor's live probe for the source: one request per
// published port, from the mesh's client to the node's LAN address (an
// HTTP GET for tcp, a datagram for udp, each must be answered by a task;
// as many as the service has tasks, so that each backend gets one),
// or, on this host, to 127.0.0.1 (tcp: the handshake must complete, the
// application's protocol is unknown; udp: only an ICMP "port unreachable"
// counts as a failure, since a server may rightly ignore the probe's
// datagram: probe.Reached).
func probeFunc(ctx context.Context, src *sourceFlags, timeout time.Duration) (func(proto string, port int) error, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("--probe-timeout %s: must be positive", timeout)
	}
	switch {
	case src.from != "":
		return nil, errors.New("--probe needs a live source (this host or --mesh), not a bundle")
	case src.meshName != "":
		if err := needRoot("doctor --probe --mesh"); err != nil {
			return nil, err
		}
		st, err := mesh.Load("", src.meshName)
		if err != nil {
			return nil, err
		}
		var ip netip.Addr
		for _, n := range st.Nodes {
			if n.Name == src.node {
				ip = n.IP
			}
		}
		if !ip.IsValid() {
			return nil, fmt.Errorf("mesh %s: no node %q", src.meshName, src.node)
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
		}, nil
	}
	return func(proto string, port int) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
		_, err := probe.Do(ctx, probe.Request{Proto: proto, To: to, Payload: "meshtrace doctor probe\n", Mode: probe.Reached})
		return err
	}, nil
}
