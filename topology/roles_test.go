package topology_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/testutil"
	"github.com/meshtrace/meshtrace/topology"
)

const fixturesDir = "../fixtures"

// wantRole is the role each recorded namespace plays, from the fixtures'
// READMEs: the layouts name them after what they are (Docker does, except
// for Docker 1.12's ingress sandbox, which is named like a container).
func wantRole(bundle, name string) topology.Role {
	switch {
	case name == "host":
		return topology.RoleHost
	case name == "ingress_sbox", strings.HasSuffix(bundle, "docker112") && name == "3f1e9b8c2a7d":
		return topology.RoleIngressSandbox
	case regexp.MustCompile(`^[0-9]+-[0-9a-z]+$`).MatchString(name):
		return topology.RoleOverlay
	case strings.HasPrefix(name, "lb_"):
		return topology.RoleLB
	case regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(name):
		return topology.RoleTask
	case name == "mtclient":
		// The VM's client netns on the node's LAN (fixtures/swarm-vm28/collect:
		// collect reads /run/netns too): read, and outside the mesh.
		return topology.RoleOther
	}
	return topology.RoleUnknown
}

func loadBundle(t *testing.T, dir string) *topology.Model {
	t.Helper()
	m, err := inspect.Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	topology.Classify(m)
	return m
}

// variants of a recorded bundle: as recorded, with plain `ip addr`, and
// both without anything but the host's firewall and the links (no Docker
// metadata, no rules or IPVS in the other namespaces): roles must come from
// the wiring whatever the input.
func variants(t *testing.T, dir string) map[string]string {
	t.Helper()
	strip := func(src string) string {
		d := t.TempDir()
		copyTree(t, src, d)
		if err := os.RemoveAll(filepath.Join(d, "docker")); err != nil {
			t.Fatal(err)
		}
		nss, _ := filepath.Glob(filepath.Join(d, "netns", "*"))
		for _, ns := range nss {
			if filepath.Base(ns) == "host" {
				continue
			}
			for _, f := range []string{"iptables-save.txt", "ipvsadm.txt"} {
				if err := os.Remove(filepath.Join(ns, f)); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
			}
		}
		return d
	}
	plain := testutil.PlainBundle(t, dir)
	return map[string]string{"recorded": dir, "plain": plain, "wiring only": strip(dir), "plain wiring only": strip(plain)}
}

func copyTree(t *testing.T, from, to string) { testutil.CopyTree(t, from, to, nil) }

// TestClassifyRecorded: every namespace of every recorded bundle gets its
// role, with evidence, from `ip -d addr` and from plain `ip addr`, with and
// without rules and Docker's metadata; the overlays' VXLAN devices are
// VTEPs (never veths with an unresolved peer) and their bridges bridges.
func TestClassifyRecorded(t *testing.T) {
	for _, dir := range testutil.RecordedBundles(t, fixturesDir) {
		for vname, vdir := range variants(t, dir) {
			t.Run(strings.TrimPrefix(dir, fixturesDir+"/")+"/"+vname, func(t *testing.T) {
				m := loadBundle(t, vdir)
				for _, ns := range m.Namespaces {
					if want := wantRole(dir, ns.Name); ns.Role != want {
						t.Errorf("%s: role %s, want %s (evidence: %s)", ns.Name, ns.Role, want, strings.Join(ns.RoleEvidence, "; "))
					}
					if len(ns.RoleEvidence) == 0 {
						t.Errorf("%s: role %s without evidence", ns.Name, ns.Role)
					}
					for _, l := range ns.Links {
						switch {
						case strings.HasPrefix(l.Name, "vxlan") && ns.Role == topology.RoleOverlay:
							if l.Kind != "vxlan" || l.Peer != nil {
								t.Errorf("%s/%s: kind %q peer %+v, want the VTEP (vxlan, no peer)", ns.Name, l.Name, l.Kind, l.Peer)
							}
						case l.Name == "br0" && ns.Role == topology.RoleOverlay, l.Name == "docker_gwbridge":
							if l.Kind != "bridge" {
								t.Errorf("%s/%s: kind %q, want bridge", ns.Name, l.Name, l.Kind)
							}
						case l.Peer != nil && l.Peer.Ifname != "" && l.Peer.Netns != "":
							if l.Kind != "veth" {
								t.Errorf("%s/%s: peer %s/%s resolved but kind %q", ns.Name, l.Name, l.Peer.Netns, l.Peer.Ifname, l.Kind)
							}
						}
					}
				}
			})
		}
	}
}

// TestPlainRemoteBackends: on the two-node swarm read with plain `ip addr`,
// remote backends keep their node and VTEP (the overlay is found, so its
// neighbour and FDB tables are read).
func TestPlainRemoteBackends(t *testing.T) {
	const vm2 = fixturesDir + "/swarm-vm2/node0"
	for vname, dir := range map[string]string{"recorded": vm2, "plain": testutil.PlainBundle(t, vm2)} {
		m := loadBundle(t, dir)
		for _, port := range []int{8080, 8081} {
			p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: port})
			if err != nil {
				t.Fatal(err)
			}
			remote := 0
			for _, b := range p.Backends {
				if !b.Remote {
					continue
				}
				remote++
				if !b.VTEP.IsValid() || !b.Node.IsValid() || b.VTEP != b.Node || !strings.HasPrefix(b.Via, "1-uj5g0wb34h/vxlan") || b.TargetPort == 0 {
					t.Errorf("%s tcp/%d: remote backend %s: via %q vtep %q node %q target %d", vname, port, b.IP, b.Via, b.VTEP, b.Node, b.TargetPort)
				}
			}
			if remote == 0 || !p.Complete {
				t.Errorf("%s tcp/%d: %d remote backends, complete %v: %+v", vname, port, remote, p.Complete, p.Hops)
			}
		}
	}
}

// TestClassifyUnknownAndOther: a namespace whose links were not read, or
// whose legs lead to nothing read, is unknown; one whose wiring is read and
// leads nowhere near the mesh (a plain bridge container) is other.
func TestClassifyUnknownAndOther(t *testing.T) {
	host := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "host"}, Role: topology.RoleHost, Links: []*topology.Link{
		{Index: 1, Name: "lo", Kind: "loopback", MTU: 65536},
		{Index: 2, Name: "docker0", MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("172.17.0.1/16")}},
		{Index: 3, Name: "veth1", MTU: 1500, Master: "docker0", Peer: &topology.Peer{Index: 2, NetnsID: 0}},
	}}
	bridged := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "c0ffee000001"}, Links: []*topology.Link{
		{Index: 1, Name: "lo", Kind: "loopback", MTU: 65536},
		{Index: 2, Name: "eth0", MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("172.17.0.2/16")}, Peer: &topology.Peer{Index: 3, NetnsID: 0}},
	}}
	unread := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "c0ffee000002"}, Errors: []string{"ip-addr.txt not collected"}}
	stray := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "c0ffee000003"}, Links: []*topology.Link{
		{Index: 1, Name: "lo", Kind: "loopback", MTU: 65536},
		{Index: 2, Name: "eth0", MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.9.2/24")}, Peer: &topology.Peer{Index: 40, NetnsID: 3}},
	}}
	m := &topology.Model{Namespaces: []*topology.Namespace{host, bridged, unread, stray}}
	topology.ResolvePeers(m)
	topology.Classify(m)
	want := map[string]topology.Role{"host": topology.RoleHost, bridged.Name: topology.RoleOther, unread.Name: topology.RoleUnknown, stray.Name: topology.RoleUnknown}
	for _, ns := range m.Namespaces {
		if ns.Role != want[ns.Name] || len(ns.RoleEvidence) == 0 {
			t.Errorf("%s: role %s (evidence %q), want %s", ns.Name, ns.Role, ns.RoleEvidence, want[ns.Name])
		}
	}
	if l := host.Link("docker0"); l.Kind != "bridge" || l.KindFrom == "" {
		t.Errorf("docker0: kind %q from %q, want bridge from its ports", l.Kind, l.KindFrom)
	}
	if ev := strings.Join(unread.RoleEvidence, " "); !strings.Contains(ev, "not collected") {
		t.Errorf("unread namespace's evidence %q does not say its links were not collected", ev)
	}
}

// TestPlainPathsSame: read with plain `ip addr`, every recorded bundle gives
// every published port the same path as read with `ip -d addr`: the same
// verdict and the same backends, remote ones with the same overlay device,
// VTEP and node.
func TestPlainPathsSame(t *testing.T) {
	type be struct {
		IP, Netns, Via, VTEP, Node string
		Remote                     bool
		Target                     int
	}
	summary := func(m *topology.Model) map[string]string {
		out := map[string]string{}
		for _, pub := range topology.PublishedPorts(m) {
			p := pathOf(t, m, pub.Proto, pub.Port)
			var bs []be
			for _, b := range p.Backends {
				n := ""
				if b.Netns != nil {
					n = *b.Netns
				}
				bs = append(bs, be{b.IP.String(), n, b.Via, b.VTEP.String(), b.Node.String(), b.Remote, b.TargetPort})
			}
			out[fmt.Sprintf("%s/%d", pub.Proto, pub.Port)] = fmt.Sprintf("%s %s %+v", p.Verdict, kinds(p.Hops), bs)
		}
		return out
	}
	ports, remote := 0, 0
	for _, dir := range testutil.RecordedBundles(t, fixturesDir) {
		d, p := summary(loadBundle(t, dir)), summary(loadBundle(t, testutil.PlainBundle(t, dir)))
		if diff := cmp.Diff(d, p); diff != "" {
			t.Errorf("%s: plain ip addr gives other paths (-d +plain):\n%s", dir, diff)
		}
		for _, s := range d {
			ports++
			remote += strings.Count(s, "Remote:true")
		}
	}
	if ports < 15 || remote < 5 {
		t.Errorf("compared %d ports with %d remote backends: the fixtures are not what this test is about", ports, remote)
	}
}

// TestInspectPublishedNotCollected: without the host's firewall, inspect
// does not say that nothing is published.
func TestInspectPublishedNotCollected(t *testing.T) {
	m := loadBundle(t, without(t, swarmVM, "netns/host/iptables-save.txt"))
	var b strings.Builder
	if err := topology.WriteInspectText(&b, topology.NewReport(m)); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); strings.Contains(s, "published:\n  none") || !strings.Contains(s, "published:\n  not known: the host's iptables-save was not collected") {
		t.Errorf("inspect:\n%s", s[strings.LastIndex(s, "published:"):])
	}
}
