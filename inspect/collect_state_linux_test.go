package inspect

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/internal/dockerns"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// stateView is what the live reader and a bundle must agree on about a
// namespace's state.
type stateView struct {
	Routes     []topology.Route
	Neighbours []topology.Neigh
	FDB        []topology.FDB
	Sysctls    topology.Sysctls
	Sockets    []topology.Socket
	Conntrack  []topology.Conntrack
}

// stateViews takes each namespace's state, with two things set aside
// that legitimately differ between two reads of the same namespace:
//   - conntrack timeouts count down between the reads (their own reading
//     is checked against conntrack -L by the parser tests), so they are
//     zeroed;
//   - the order of conntrack entries, neighbours and FDB entries is the
//     order of the kernel's hash walk, which an entry added or refreshed
//     between the reads may change: they are compared as sets (sorted).
//
// Everything else, nil-ness included ("not collected" vs "empty"), must be
// equal.
func stateViews(m *topology.Model) map[string]stateView {
	out := map[string]stateView{}
	for _, ns := range m.Namespaces {
		v := stateView{Routes: ns.Routes, Sysctls: ns.Sysctls, Sockets: ns.Sockets,
			Neighbours: asSet(ns.Neighbours, func(n topology.Neigh) string { return fmt.Sprint(n) }),
			FDB:        asSet(ns.FDB, func(e topology.FDB) string { return fmt.Sprint(e) }),
		}
		if ns.Conntrack != nil {
			v.Conntrack = []topology.Conntrack{}
		}
		for _, c := range ns.Conntrack {
			c.Timeout = 0
			v.Conntrack = append(v.Conntrack, c)
		}
		v.Conntrack = asSet(v.Conntrack, func(c topology.Conntrack) string { return fmt.Sprint(c) })
		out[ns.Name] = v
	}
	return out
}

func asSet[T any](s []T, key func(T) string) []T {
	if s == nil {
		return nil
	}
	out := append([]T{}, s...)
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

// listenMore opens, inside a task, the sockets the world's own servers do
// not: IPv6 dual-stack and v6-only, wildcard UDP, loopback.
func listenMore(t *testing.T, nsPath string) {
	t.Helper()
	var cs []io.Closer
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	err := netnsx.Do(nsPath, func() error {
		for _, l := range []struct{ net, addr string }{
			{"tcp", "[::]:8443"}, {"tcp6", "[::1]:8444"}, {"tcp4", "127.0.0.1:8445"}, {"udp", "[::]:5300"}, {"udp4", "0.0.0.0:5301"},
		} {
			var c io.Closer
			var err error
			if l.net[:3] == "udp" {
				c, err = net.ListenPacket(l.net, l.addr)
			} else {
				c, err = net.Listen(l.net, l.addr)
			}
			if err != nil {
				return fmt.Errorf("listen %s %s: %w", l.net, l.addr, err)
			}
			cs = append(cs, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// connectThrough opens a TCP connection from the host to the published
// port, kept open for the test: ESTABLISHED entries, DNATed in the host,
// balanced in the sandbox and REDIRECTed in a task, each with a reply
// tuple that differs from the original.
func connectThrough(t *testing.T, w *dockerns.World, port int) {
	t.Helper()
	var c net.Conn
	err := netnsx.Do(w.HostPath, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(dockerns.NodeIP.Addr(), uint16(port)).String(), 2*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

// TestCollectStateMatchesLive builds a Docker-shaped node (an overlay
// whose VXLAN device has a remote peer's PERMANENT neighbour and FDB entry
// with dst, tasks with TCP and UDP servers plus IPv6 and wildcard
// listeners, NATed TCP and UDP connections through the published ports),
// reads it live, collects it into a bundle, reads that back, and checks
// that both say the same about routes, neighbours, FDB, sysctls, listening
// sockets and conntrack, namespace by namespace.
func TestCollectStateMatchesLive(t *testing.T) {
	w := world(t, dockerns.Options{Tasks: 2, EastWest: true, Emulate: true, Listen: true,
		Ports: []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}, {Proto: "udp", Published: 5353, Target: 53}}})
	listenMore(t, filepath.Join(w.Dir, w.Tasks[0].Name))
	connectThrough(t, w, 8080)
	datagram(t, w.HostPath, netip.AddrPortFrom(dockerns.NodeIP.Addr(), 5353))

	var live, bundle *topology.Model
	for attempt := 1; ; attempt++ {
		before := liveConntrack(t, w)
		dir := filepath.Join(t.TempDir(), "bundle")
		if err := Collect(context.Background(), CollectOptions{HostNetns: w.HostPath, NetnsDirs: []string{w.Dir}, NoDocker: true}, dir); err != nil {
			t.Fatal(err)
		}
		live = liveConntrack(t, w)
		// The world must hold still across the collection (a neighbour
		// going stale, a conntrack entry expiring would be a difference
		// of time, not of readers).
		if d := cmp.Diff(stateViews(before), stateViews(live), cmpopts.EquateComparable(netip.Addr{})); d != "" {
			if attempt == 20 {
				t.Fatalf("the world never held still across a collection:\n%s", d)
			}
			time.Sleep(250 * time.Millisecond)
			continue
		}
		var err error
		if bundle, err = Bundle(dir); err != nil {
			t.Fatal(err)
		}
		break
	}
	lv, bv := stateViews(live), stateViews(bundle)
	if len(lv) != len(bv) {
		t.Fatalf("live has %d namespaces, the bundle %d", len(lv), len(bv))
	}
	for _, ns := range bundle.Namespaces {
		if len(ns.Errors) > 0 {
			t.Errorf("netns %s: bundle errors %q", ns.Name, ns.Errors)
		}
		if d := cmp.Diff(lv[ns.Name], bv[ns.Name], cmpopts.EquateComparable(netip.Addr{})); d != "" {
			t.Errorf("netns %s state (-live +bundle):\n%s", ns.Name, d)
		}
	}
	// The comparison proves something only if the world has it all.
	checkStateCoverage(t, w, live)
}

func liveConntrack(t *testing.T, w *dockerns.World) *topology.Model {
	t.Helper()
	m, err := Live(context.Background(), Options{HostNetns: w.HostPath, NetnsDirs: []string{w.Dir}, Firewall: FirewallExec, Conntrack: true})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkStateCoverage: VXLAN FDB entries with dst, PERMANENT neighbours,
// per-link sysctls, IPv6 and wildcard sockets of both protocols, NATed
// conntrack entries of both protocols.
func checkStateCoverage(t *testing.T, w *dockerns.World, m *topology.Model) {
	t.Helper()
	var dst, permanent, linkKnobs, v6, udp, natTCP, natUDP int
	for _, ns := range m.Namespaces {
		for _, e := range ns.FDB {
			if e.Dst == dockerns.RemoteVTEP {
				dst++
			}
		}
		for _, n := range ns.Neighbours {
			if n.State == "permanent" {
				permanent++
			}
		}
		for _, l := range ns.Links {
			if ns.Sysctls["net.ipv4.conf."+l.Name+".rp_filter"] != "" {
				linkKnobs++
			}
		}
		for _, s := range ns.Sockets {
			if s.Addr.Is6() {
				v6++
			}
			if s.Proto == "udp" {
				udp++
			}
		}
		for _, c := range ns.Conntrack {
			if c.Reply.Src != c.Orig.Dst || c.Reply.SPort != c.Orig.DPort {
				if c.Proto == "tcp" {
					natTCP++
				} else {
					natUDP++
				}
			}
		}
	}
	if dst == 0 || permanent == 0 || linkKnobs < 10 || v6 < 2 || udp < 3 || natTCP < 3 || natUDP < 2 {
		t.Errorf("the world lacks what the comparison is about: fdb dst %d, permanent neighbours %d, link knobs %d, v6 sockets %d, udp sockets %d, NATed tcp %d udp %d",
			dst, permanent, linkKnobs, v6, udp, natTCP, natUDP)
	}
}
