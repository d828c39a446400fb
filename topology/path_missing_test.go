package topology_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

const swarmVM = fixturesDir + "/swarm-vm/node0"

// without copies a bundle into a temporary directory without the files
// given (relative to the bundle).
func without(t *testing.T, bundle string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, bundle, dir)
	for _, f := range files {
		if err := os.RemoveAll(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func pathOf(t *testing.T, m *topology.Model, proto string, port int) *topology.Path {
	t.Helper()
	p, err := topology.FindPath(m, topology.Query{Proto: proto, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func breaks(p *topology.Path) []topology.Hop {
	var out []topology.Hop
	for _, h := range p.Hops {
		if h.Kind == topology.HopBreak {
			out = append(out, h)
		}
	}
	for _, b := range p.Backends {
		for _, h := range b.Hops {
			if h.Kind == topology.HopBreak {
				out = append(out, h)
			}
		}
	}
	return out
}

// TestPathNotCollected: a file missing from a bundle whose path is complete
// makes the path unknown, never broken, and the path says what it could not
// check and why.
func TestPathNotCollected(t *testing.T) {
	if p := pathOf(t, loadBundle(t, swarmVM), "tcp", 8080); p.Verdict != topology.VerdictComplete || !p.Complete {
		t.Fatalf("recorded bundle: verdict %q: %+v", p.Verdict, p.Hops)
	}
	cases := []struct{ file, netns, what string }{
		{"netns/ingress_sbox/iptables-save.txt", "ingress_sbox", "iptables-save"},
		{"netns/ingress_sbox/ipvsadm.txt", "ingress_sbox", "ipvsadm"},
		{"netns/ingress_sbox/ip-addr.txt", "ingress_sbox", "ip addr"},
		{"netns/55e431cb2652/iptables-save.txt", "55e431cb2652", "iptables-save"},
		{"netns/55e431cb2652/ip-addr.txt", "55e431cb2652", "ip addr"},
		{"netns/host/iptables-save.txt", "host", "iptables-save"},
		{"netns/host/ip-addr.txt", "host", "ip addr"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			p := pathOf(t, loadBundle(t, without(t, swarmVM, c.file)), "tcp", 8080)
			if p.Verdict != topology.VerdictUnknown || p.Complete {
				t.Errorf("verdict %q complete %v, want unknown", p.Verdict, p.Complete)
			}
			if b := breaks(p); len(b) > 0 {
				t.Errorf("a missing file broke the path: %+v", b)
			}
			lines := p.Unknowns()
			found := false
			for _, l := range lines {
				found = found || strings.HasPrefix(l, "tcp/8080: unknown ") && strings.Contains(l, c.netns) &&
					strings.Contains(l, c.what) && strings.Contains(l, "not collected")
			}
			if !found {
				t.Errorf("unknowns %q do not say tcp/8080 is unknown for lack of %s's %s", lines, c.netns, c.what)
			}
			var b strings.Builder
			if err := topology.WritePathText(&b, p); err != nil || !strings.Contains(b.String(), "tcp/8080: UNKNOWN") {
				t.Errorf("text: %v\n%s", err, b.String())
			}
		})
	}
	// The example of the issue, word for word.
	p := pathOf(t, loadBundle(t, without(t, swarmVM, "netns/ingress_sbox/iptables-save.txt")), "tcp", 8080)
	if got := strings.Join(p.Unknowns(), "\n"); got != "tcp/8080: unknown past ingress_sbox: its iptables-save was not collected" {
		t.Errorf("unknowns: %q", got)
	}
}

// TestRemoteTargetDocker112: on the Docker 1.12 layout the sandbox's
// REDIRECT, before IPVS, decides the port of every backend, remote ones
// too, with no local task and no Docker metadata to copy it from.
func TestRemoteTargetDocker112(t *testing.T) {
	dir := without(t, fixturesDir+"/bundles/docker112", "docker", "netns/b81c7d0e44f2")
	m := loadBundle(t, dir)
	for _, c := range []struct {
		proto        string
		port, target int
	}{{"tcp", 8080, 80}, {"udp", 5353, 53}} {
		p := pathOf(t, m, c.proto, c.port)
		if len(p.Backends) == 0 {
			t.Fatalf("%s/%d: no backends: %+v", c.proto, c.port, p.Hops)
		}
		for _, b := range p.Backends {
			if !b.Remote || b.TargetPort != c.target {
				t.Errorf("%s/%d: backend %s remote %v serves %d, want remote serving %d", c.proto, c.port, b.IP, b.Remote, b.TargetPort, c.target)
			}
		}
	}
}

// TestEastWestUnreachable: a caller with no interface in the VIP's network
// never meets the VIP: its packet takes the default route through
// docker_gwbridge and the host masquerades it. Measured on the real node
// (issue 10): the SYN is never answered.
func TestEastWestUnreachable(t *testing.T) {
	m := loadBundle(t, swarmVM)
	for _, c := range []struct{ vip, from, why string }{
		{"10.0.1.2", "55e431cb2652", "api's VIP on appnet, from a web task only on ingress"},
		{"10.0.0.3", "d6706d6e5669", "web's ingress VIP, from the caller only on appnet"},
	} {
		p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 80, VIP: mustAddr(c.vip), Netns: c.from})
		if err != nil {
			t.Fatal(err)
		}
		b := breaks(p)
		if p.Verdict != topology.VerdictBroken || len(b) != 1 || b[0].Code != topology.BreakVIPUnreachable || b[0].Netns != c.from {
			t.Fatalf("%s: verdict %q, breaks %+v, want one vip-unreachable in %s", c.why, p.Verdict, b, c.from)
		}
		for _, w := range []string{c.vip, "docker_gwbridge", "MASQUERADE"} {
			if !strings.Contains(b[0].Reason, w) {
				t.Errorf("%s: reason %q does not say %q", c.why, b[0].Reason, w)
			}
		}
		if len(p.Backends) != 0 {
			t.Errorf("%s: backends %+v behind an unreachable VIP", c.why, p.Backends)
		}
	}
	// The caller on appnet reaches api's VIP through its appnet leg: the
	// path says so first.
	p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 80, VIP: mustAddr("10.0.1.2"), Netns: "d6706d6e5669"})
	if err != nil {
		t.Fatal(err)
	}
	if h := p.Hops[0]; p.Verdict != topology.VerdictComplete || h.Kind != topology.HopRoute || h.Netns != "d6706d6e5669" || h.Dev != "eth0" {
		t.Errorf("verdict %q, first hop %+v, want a route via eth0", p.Verdict, h)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
