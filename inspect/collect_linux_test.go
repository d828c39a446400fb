package inspect

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/internal/dockerns"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// datagram sends one UDP datagram from inside the namespace at nsPath.
func datagram(t *testing.T, nsPath string, to netip.AddrPort) {
	t.Helper()
	if err := netnsx.Do(nsPath, func() error {
		c, err := net.Dial("udp4", to.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("meshtrace"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// natHits sums the packet counters of a namespace's nat rules.
func natHits(t *testing.T, path string) uint64 {
	t.Helper()
	out, err := execRunner{}.Run(context.Background(), path, "iptables-save", "-c", "-t", "nat")
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, l := range strings.Split(string(out), "\n") {
		var p, b uint64
		if _, err := fmt.Sscanf(l, "[%d:%d] -A", &p, &b); err == nil {
			n += p
		}
	}
	return n
}

// linkView is what a bundle carries of a link.
type linkView struct {
	Name, Kind, MAC, Master string
	MTU                     int
	Up                      bool
	Addrs                   []netip.Prefix
	Peer                    string
}

func linkViews(ns *topology.Namespace) []linkView {
	var out []linkView
	for _, l := range ns.Links {
		v := linkView{Name: l.Name, Kind: l.Kind, MAC: l.MAC.String(), Master: l.Master, MTU: l.MTU, Up: l.Up, Addrs: l.Addrs}
		// `ip addr` prints lo's all-zero MAC; the netlink reader leaves
		// it empty. Both mean "no address".
		if v.MAC == "00:00:00:00:00:00" {
			v.MAC = ""
		}
		if l.Peer != nil {
			v.Peer = l.Peer.Netns + "/" + l.Peer.Ifname
		}
		out = append(out, v)
	}
	return out
}

// ruleView is what a bundle carries of a rule.
type ruleView struct {
	Text           string
	Packets, Bytes uint64
}

func ruleViews(fw *topology.Firewall) map[string][]ruleView {
	out := map[string][]ruleView{}
	if fw == nil {
		return out
	}
	for _, tb := range fw.Tables {
		for _, c := range tb.Chains {
			key := tb.Name + "/" + c.Name + " " + c.Policy
			out[key] = []ruleView{}
			for _, r := range c.Rules {
				out[key] = append(out[key], ruleView{r.Text, r.Packets, r.Bytes})
			}
		}
	}
	return out
}

func readLive(t *testing.T, w *dockerns.World) *topology.Model {
	t.Helper()
	l, err := Live(context.Background(), Options{HostNetns: w.HostPath, NetnsDirs: []string{w.Dir}, Firewall: FirewallExec})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// views is what a bundle carries of a model, per namespace.
func views(m *topology.Model) map[string]any {
	out := map[string]any{}
	for _, ns := range m.Namespaces {
		out[ns.Name] = []any{linkViews(ns), ruleViews(ns.Firewall)}
	}
	return out
}

// collectSettled collects the world into a bundle between two live reads
// that agree, so the comparison is not disturbed by what a fresh world
// still does on its own (IPv6 link-local addresses leaving DAD, IGMP
// reports counted by the MASQUERADE rules): it retries until the world
// holds still across the collection. It returns the bundle directory, the
// bundle's model and the live model read right after.
func collectSettled(t *testing.T, w *dockerns.World) (string, *topology.Model, *topology.Model) {
	t.Helper()
	read := func() *topology.Model { return readLive(t, w) }
	return settled(t, read, func(m *topology.Model) any { return views(m) },
		CollectOptions{HostNetns: w.HostPath, NetnsDirs: []string{w.Dir}, NoDocker: true},
		cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{}))
}

// settled collects with o between two reads whose views agree (opts),
// retrying until they do; see collectSettled.
func settled(t *testing.T, read func() *topology.Model, view func(*topology.Model) any, o CollectOptions, opts ...cmp.Option) (string, *topology.Model, *topology.Model) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		before := read()
		dir := filepath.Join(t.TempDir(), "bundle")
		if err := Collect(context.Background(), o, dir); err != nil {
			t.Fatal(err)
		}
		after := read()
		if d := cmp.Diff(view(before), view(after), opts...); d != "" {
			if attempt == 20 {
				t.Fatalf("the namespaces never held still across a collection:\n%s", d)
			}
			time.Sleep(250 * time.Millisecond)
			continue
		}
		b, err := Bundle(dir)
		if err != nil {
			t.Fatal(err)
		}
		return dir, b, after
	}
}

// TestCollectMatchesLive collects a Docker-shaped node into a bundle, reads
// it back, and checks it says what the live reader says about the same
// namespaces: names, links (kind, MTU, MAC, addresses, masters, veth
// peers), every rule with its counters, and the reconstructed paths.
func TestCollectMatchesLive(t *testing.T) {
	for _, v := range []dockerrules.Variant{dockerrules.Modern, dockerrules.Docker112} {
		t.Run(map[dockerrules.Variant]string{dockerrules.Modern: "modern", dockerrules.Docker112: "docker112"}[v], func(t *testing.T) {
			w := world(t, dockerns.Options{Tasks: 2, Variant: v, EastWest: true, Emulate: true, Listen: true,
				Ports: []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}, {Proto: "udp", Published: 5353, Target: 53}}})
			// One datagram through the published port: host DNAT, sandbox
			// mark, REDIRECT or (emulated) balancing, so counters are not
			// all zero and do not move while we read (no replies, no
			// teardown).
			sbox := filepath.Join(w.Dir, w.Sandbox)
			before := natHits(t, sbox)
			datagram(t, w.HostPath, netip.AddrPortFrom(dockerns.NodeIP.Addr(), 5353))
			deadline := time.Now().Add(2 * time.Second)
			for natHits(t, sbox) == before {
				if time.Now().After(deadline) {
					t.Fatal("the datagram never reached the ingress sandbox")
				}
				time.Sleep(10 * time.Millisecond)
			}

			dir, b, l := collectSettled(t, w)
			if len(b.Namespaces) != len(l.Namespaces) {
				t.Fatalf("bundle has %d namespaces, live %d", len(b.Namespaces), len(l.Namespaces))
			}
			var rules int
			var counted uint64
			for i, bns := range b.Namespaces {
				lns := l.Namespaces[i]
				for _, rs := range ruleViews(bns.Firewall) {
					rules += len(rs)
					for _, r := range rs {
						counted += r.Packets
					}
				}
				if bns.Name != lns.Name {
					t.Fatalf("namespace %d: bundle %s, live %s", i, bns.Name, lns.Name)
				}
				if len(bns.Errors) > 0 {
					t.Errorf("netns %s: bundle errors %q", bns.Name, bns.Errors)
				}
				opts := cmp.Options{cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{})}
				if d := cmp.Diff(linkViews(lns), linkViews(bns), opts); d != "" {
					t.Errorf("netns %s links (-live +bundle):\n%s", bns.Name, d)
				}
				if d := cmp.Diff(ruleViews(lns.Firewall), ruleViews(bns.Firewall)); d != "" {
					t.Errorf("netns %s rules (-live +bundle):\n%s", bns.Name, d)
				}
				// No IPVS on this kernel: the bundle says so exactly as
				// the live reader does.
				if d := cmp.Diff(lns.IPVS, bns.IPVS); d != "" {
					t.Errorf("netns %s ipvs (-live +bundle):\n%s", bns.Name, d)
				}
			}
			if rules < 20 || counted == 0 {
				t.Errorf("bundle has %d rules counting %d packets: the comparison proves little", rules, counted)
			}
			notes, _ := os.ReadFile(filepath.Join(dir, BundleNotes))
			if ok, _ := (netlinkIPVSProbe{}).KernelIPVS(); !ok && !strings.Contains(string(notes), "ipvsadm.txt not collected in any namespace: kernel has no IPVS") {
				t.Errorf("NOTES.txt does not say why ipvsadm.txt is missing:\n%s", notes)
			}

			topology.Classify(b)
			topology.Classify(l)
			queries := []topology.Query{
				{Proto: "tcp", Port: 8080},
				{Proto: "udp", Port: 5353},
				{Proto: "tcp", Port: 80, VIP: w.EastWestSvc.VIP, Netns: w.Tasks[0].Name},
			}
			for _, q := range queries {
				bp, berr := topology.FindPath(b, q)
				lp, lerr := topology.FindPath(l, q)
				if (berr == nil) != (lerr == nil) {
					t.Fatalf("%+v: bundle error %v, live error %v", q, berr, lerr)
				}
				if d := cmp.Diff(lp, bp, cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})); d != "" {
					t.Errorf("path %+v (-live +bundle):\n%s", q, d)
				}
				// On the modern layout the published ports go all the way
				// (the world emulates IPVS with iptables); on 1.12's the
				// sandbox's REDIRECT comes before the emulation, so only a
				// kernel IPVS could balance and the path breaks there.
				// What matters is that both readers reach the same verdict.
				full := !q.VIP.IsValid() && v == dockerrules.Modern
				if bp == nil || len(bp.Hops) == 0 || (full && (!bp.Complete || len(bp.Backends) == 0)) {
					t.Errorf("path %+v: %+v", q, bp)
				}
			}
		})
	}
}
