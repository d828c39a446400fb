package inspect

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/topology"
)

func veth(idx int, name string, peerIdx, nsid int) *topology.Link {
	return &topology.Link{Index: idx, Name: name, Kind: "veth", MTU: 1500, Up: true,
		Peer: &topology.Peer{Index: peerIdx, NetnsID: nsid}}
}

func lo() *topology.Link {
	return &topology.Link{Index: 1, Name: "lo", Kind: "loopback", MTU: 65536, Up: true}
}

// twoCopies is a host, a task with a unique pair to the host, and two
// sandbox/overlay copies whose ifindexes and netnsids are identical, so
// only the kernel's netnsids can tell which overlay each sandbox is wired
// to. The host also has a pair within itself.
func twoCopies() (*fakes, map[[2]string]string) {
	f := newFakes("s1", "s2", "o1", "o2", "t")
	f.links.data = map[string]*LinkData{
		"host": {Links: []*topology.Link{lo(), veth(3, "eth0", 4, -1), veth(4, "underlay0", 3, -1), veth(7, "vethA", 2, 0)}},
		"t":    {Links: []*topology.Link{lo(), veth(2, "eth1", 7, 0)}},
		"s1":   {Links: []*topology.Link{lo(), veth(2, "eth0", 5, 0)}},
		"s2":   {Links: []*topology.Link{lo(), veth(2, "eth0", 5, 0)}},
		// A decoy: index 4 is the sandboxes' "peer index minus one", and
		// it is a veth too, but its peer is not index 2.
		"o1": {Links: []*topology.Link{lo(), veth(4, "veth9", 9, 3), veth(5, "veth0", 2, 1)}},
		"o2": {Links: []*topology.Link{lo(), veth(5, "veth0", 2, 1)}},
	}
	f.links.ids = map[[2]string]int{
		{"s1", "o1"}: 0, {"o1", "s1"}: 1,
		{"s2", "o2"}: 0, {"o2", "s2"}: 1,
		{"host", "t"}: 0, {"t", "host"}: 0,
	}
	want := map[[2]string]string{
		{"host", "eth0"}: "host/underlay0", {"host", "underlay0"}: "host/eth0",
		{"host", "vethA"}: "t/eth1", {"t", "eth1"}: "host/vethA",
		{"s1", "eth0"}: "o1/veth0", {"o1", "veth0"}: "s1/eth0",
		{"s2", "eth0"}: "o2/veth0", {"o2", "veth0"}: "s2/eth0",
		{"o1", "veth9"}: "/",
	}
	return f, want
}

func peersOf(m *topology.Model) map[[2]string]string {
	out := map[[2]string]string{}
	for _, ns := range m.Namespaces {
		for _, l := range ns.Links {
			if l.Peer != nil {
				out[[2]string{ns.Name, l.Name}] = l.Peer.Netns + "/" + l.Peer.Ifname
			}
		}
	}
	return out
}

func TestLivePeersFromKernelNetnsIDs(t *testing.T) {
	f, want := twoCopies()
	m, err := Live(context.Background(), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, peersOf(m)); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
	ids := map[string]map[int]string{}
	for _, ns := range m.Namespaces {
		if ns.NetnsIDs != nil {
			ids[ns.Name] = ns.NetnsIDs
		}
	}
	wantIDs := map[string]map[int]string{
		"host": {0: "t"}, "t": {0: "host"},
		"s1": {0: "o1"}, "o1": {1: "s1"}, "s2": {0: "o2"}, "o2": {1: "s2"},
	}
	if diff := cmp.Diff(wantIDs, ids); diff != "" {
		t.Errorf("netnsids (-want +got):\n%s", diff)
	}
	for k, n := range f.links.asked {
		if n > 1 {
			t.Errorf("netnsid %s -> %s asked %d times", k[0], k[1], n)
		}
		if k[0] == "host" || k[0] == "t" {
			t.Errorf("asked %s -> %s although that pair is unique by ifindex", k[0], k[1])
		}
	}
	if len(f.links.asked) == 0 {
		t.Error("the ambiguous pairs were resolved without asking the kernel")
	}
}

func TestLivePeersKernelFailure(t *testing.T) {
	f, want := twoCopies()
	f.links.errs["netnsid:s1"] = errors.New("rtnetlink: operation not permitted")
	f.links.errs["netnsid:s2"] = errors.New("rtnetlink: operation not permitted")
	f.links.errs["netnsid:o1"] = errors.New("rtnetlink: operation not permitted")
	f.links.errs["netnsid:o2"] = errors.New("rtnetlink: operation not permitted")
	m, err := Live(context.Background(), f.options())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range [][2]string{{"s1", "eth0"}, {"s2", "eth0"}, {"o1", "veth0"}, {"o2", "veth0"}} {
		want[k] = "/" // nothing guessed
	}
	if diff := cmp.Diff(want, peersOf(m)); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
	if errs := m.Lookup("s1").Errors; len(errs) == 0 || !strings.Contains(errs[0], "netns s1: netnsid of o") {
		t.Errorf("s1 errors %q", errs)
	}
}
