package inspect

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/topology"
)

const vm28Xfrm = "../fixtures/swarm-vm28-xfrm"

// TestXfrmVM28: the two nodes of a Docker 28 encrypted overlay
// (scripts/vm/record28-xfrm.sh). On each, the SAs and policies read live
// over netlink (inspect.json, written by meshtrace in the VM) are the
// bundle's (meshtrace collect there, keys redacted), but for the counters,
// which moved between the two reads; and the SPIs pair across the nodes:
// what one node sends with, the other receives with, and each node's out
// policy names the SA it sends with.
func TestXfrmVM28(t *testing.T) {
	peers := map[string]topology.XfrmPeer{}
	for _, node := range []string{"node0", "node1"} {
		b, err := Bundle(filepath.Join(vm28Xfrm, node, "collect"))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(vm28Xfrm, node, "inspect.json"))
		if err != nil {
			t.Fatal(err)
		}
		var live topology.Model
		if err := json.Unmarshal(raw, &live); err != nil {
			t.Fatalf("%s inspect.json: %v", node, err)
		}
		for _, lns := range live.Namespaces {
			bns := b.Lookup(lns.Name)
			if bns == nil || bns.Xfrm == nil || lns.Xfrm == nil {
				t.Fatalf("%s netns %s: xfrm live %v bundle %v", node, lns.Name, lns.Xfrm, bns)
			}
			if d := cmp.Diff(lns.Xfrm, bns.Xfrm, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}),
				cmpopts.IgnoreFields(topology.XfrmState{}, "Stats")); d != "" {
				t.Errorf("%s netns %s: xfrm (-live +bundle):\n%s", node, lns.Name, d)
			}
			if lns.Name != "host" && len(lns.Xfrm.States)+len(lns.Xfrm.Policies) > 0 {
				t.Errorf("%s netns %s: SAs or policies outside the host namespace", node, lns.Name)
			}
		}
		checkVM28Counters(t, node, b)
		host := b.Lookup("host")
		ps, foreign := host.XfrmPeers()
		if len(ps) != 1 || len(foreign) != 0 {
			t.Fatalf("%s: peers %+v, foreign %v, want the other node", node, ps, foreign)
		}
		p := ps[0]
		if len(p.Out) != 1 || len(p.In) == 0 || len(p.Policies) != 1 {
			t.Fatalf("%s: peer %+v, want one SA out, one per key in, one policy", node, p)
		}
		if tm := host.Xfrm.Policies[p.Policies[0]].Tmpls[0]; tm.SPI != p.Out[0].SPI {
			t.Errorf("%s: the out policy sends with %s, the out SA is %s", node, tm.SPI, p.Out[0].SPI)
		}
		peers[node] = p
	}
	n0, n1 := peers["node0"], peers["node1"]
	if n0.Local != n1.Remote || n1.Local != n0.Remote {
		t.Fatalf("node0 %s->%s, node1 %s->%s", n0.Local, n0.Remote, n1.Local, n1.Remote)
	}
	for _, dir := range []struct {
		from, to topology.XfrmPeer
		name     string
	}{{n0, n1, "node0->node1"}, {n1, n0, "node1->node0"}} {
		in := map[topology.SPI]bool{}
		for _, sa := range dir.to.In {
			in[sa.SPI] = true
		}
		if !in[dir.from.Out[0].SPI] {
			t.Errorf("%s: sent with %s, which the receiver has no SA for (%+v)", dir.name, dir.from.Out[0].SPI, dir.to.In)
		}
	}
}

// checkVM28Counters: collect wrote every namespace's counters on a real
// Docker 28 node, and they read back: SNMP, conntrack, every link's (the
// overlay's VXLAN device too), IPVS's per service and destination, and
// every SA's; the traffic of the recording moved them.
func checkVM28Counters(t *testing.T, node string, b *topology.Model) {
	t.Helper()
	vxlan, ipvs := 0, 0
	for _, ns := range b.Namespaces {
		c := ns.Counters
		if len(ns.Errors) > 0 || c == nil || len(c.SNMP) < 100 || c.Conntrack == nil || len(c.Links) == 0 {
			t.Errorf("%s netns %s: errors %q counters %+v", node, ns.Name, ns.Errors, c)
			continue
		}
		for _, l := range ns.Links {
			if _, ok := c.Links[l.Name]; !ok {
				t.Errorf("%s netns %s: no counters for link %s", node, ns.Name, l.Name)
			}
			if l.Kind == "vxlan" && c.Links[l.Name]["tx_packets"] > 0 {
				vxlan++
			}
		}
		if ns.IPVS != nil {
			for _, s := range ns.IPVS.Services {
				if s.Stats == nil {
					t.Errorf("%s netns %s: IPVS service %+v without counters", node, ns.Name, s)
				}
				if s.Stats != nil && s.Stats.Conns > 0 {
					ipvs++
				}
			}
		}
	}
	if vxlan == 0 || (node == "node0" && ipvs == 0) {
		t.Errorf("%s: %d VXLAN devices and %d IPVS services that carried traffic", node, vxlan, ipvs)
	}
	var sent uint64
	for _, s := range b.Lookup("host").Xfrm.States {
		if s.Stats == nil {
			t.Errorf("%s: SA %s without counters", node, s)
			continue
		}
		sent += s.Stats.Packets
	}
	if sent == 0 {
		t.Errorf("%s: no SA carried a packet", node)
	}
}
