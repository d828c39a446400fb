package topology

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// veth builds a link with a peer that is not resolved yet.
func veth(idx int, name string, peerIdx, nsid int) *Link {
	return &Link{Index: idx, Name: name, Kind: "veth", Peer: &Peer{Index: peerIdx, NetnsID: nsid}}
}

func nsWith(name string, ids map[int]string, links ...*Link) *Namespace {
	return &Namespace{NetnsRef: NetnsRef{Name: name}, NetnsIDs: ids, Links: links}
}

// peersOf lists "ns/link -> netns/ifname" for every link with a peer,
// "?" when unresolved.
func peersOf(m *Model) map[string]string {
	out := map[string]string{}
	for _, ns := range m.Namespaces {
		for _, l := range ns.Links {
			if l.Peer == nil {
				continue
			}
			v := "?"
			if l.Peer.Netns != "" {
				v = l.Peer.Netns + "/" + l.Peer.Ifname
			}
			out[ns.Name+"/"+l.Name] = v
		}
	}
	return out
}

func idsOf(m *Model) map[string]map[int]string {
	out := map[string]map[int]string{}
	for _, ns := range m.Namespaces {
		if len(ns.NetnsIDs) > 0 {
			out[ns.Name] = ns.NetnsIDs
		}
	}
	return out
}

func TestResolvePeers(t *testing.T) {
	tests := []struct {
		name      string
		ns        []*Namespace
		wantPeers map[string]string
		wantIDs   map[string]map[int]string
	}{
		{
			name: "one pair across namespaces",
			ns: []*Namespace{
				nsWith("host", nil, veth(7, "veth1a2b", 2, 0)),
				nsWith("task", nil, &Link{Index: 1, Name: "lo", Kind: "loopback"}, veth(2, "eth0", 7, 0)),
			},
			wantPeers: map[string]string{"host/veth1a2b": "task/eth0", "task/eth0": "host/veth1a2b"},
			wantIDs:   map[string]map[int]string{"host": {0: "task"}, "task": {0: "host"}},
		},
		{
			name: "peer index is not mine minus one",
			ns: []*Namespace{
				nsWith("host", nil, veth(25275, "vethX", 25274, 3)),
				// 25274 exists but is paired elsewhere; the real peer
				// (25274 in another netns) was not collected.
				nsWith("task", nil, veth(25274, "eth0", 99, 1)),
			},
			wantPeers: map[string]string{"host/vethX": "?", "task/eth0": "?"},
			wantIDs:   map[string]map[int]string{},
		},
		{
			name: "pairs with equal indexes in many namespaces",
			ns: []*Namespace{
				nsWith("host", nil, veth(10, "vethA", 2, 0), veth(11, "vethB", 2, 1)),
				nsWith("a", nil, veth(2, "eth0", 10, 0)),
				nsWith("b", nil, veth(2, "eth0", 11, 0)),
			},
			wantPeers: map[string]string{"host/vethA": "a/eth0", "host/vethB": "b/eth0", "a/eth0": "host/vethA", "b/eth0": "host/vethB"},
			wantIDs:   map[string]map[int]string{"host": {0: "a", 1: "b"}, "a": {0: "host"}, "b": {0: "host"}},
		},
		{
			name: "ambiguous stays unresolved",
			ns: []*Namespace{
				nsWith("host", nil, veth(10, "vethA", 2, 0)),
				nsWith("a", nil, veth(2, "eth0", 10, 0)),
				nsWith("b", nil, veth(2, "eth0", 10, 0)),
			},
			wantPeers: map[string]string{"host/vethA": "?", "a/eth0": "?", "b/eth0": "?"},
			wantIDs:   map[string]map[int]string{},
		},
		{
			name: "a known netnsid breaks the tie",
			ns: []*Namespace{
				nsWith("host", map[int]string{0: "b"}, veth(10, "vethA", 2, 0)),
				nsWith("a", nil, veth(2, "eth0", 10, 0)),
				nsWith("b", nil, veth(2, "eth0", 10, 0)),
			},
			wantPeers: map[string]string{"host/vethA": "b/eth0", "a/eth0": "?", "b/eth0": "host/vethA"},
			wantIDs:   map[string]map[int]string{"host": {0: "b"}, "b": {0: "host"}},
		},
		{
			name: "the peer side's netnsid map rules a candidate out",
			ns: []*Namespace{
				nsWith("host", nil, veth(10, "vethA", 2, 0)),
				nsWith("a", map[int]string{5: "other"}, veth(2, "eth0", 10, 5)),
				nsWith("b", nil, veth(2, "eth0", 10, 0)),
			},
			wantPeers: map[string]string{"host/vethA": "b/eth0", "a/eth0": "?", "b/eth0": "host/vethA"},
			wantIDs:   map[string]map[int]string{"a": {5: "other"}, "host": {0: "b"}, "b": {0: "host"}},
		},
		{
			name: "a namespace has one netnsid per peer namespace",
			ns: []*Namespace{
				// host knows b as 1, so vethA (netnsid 0) cannot lead to b.
				nsWith("host", map[int]string{1: "b"}, veth(10, "vethA", 2, 0)),
				nsWith("a", nil, veth(2, "eth0", 10, 0)),
				nsWith("b", nil, veth(2, "eth0", 10, 0)),
			},
			wantPeers: map[string]string{"host/vethA": "a/eth0", "a/eth0": "host/vethA", "b/eth0": "?"},
			wantIDs:   map[string]map[int]string{"host": {0: "a", 1: "b"}, "a": {0: "host"}},
		},
		{
			name: "a resolved pair pins the netnsid for the next",
			ns: []*Namespace{
				nsWith("host", nil, veth(10, "vethA", 2, 0), veth(11, "vethB", 3, 0)),
				nsWith("a", nil, veth(2, "eth0", 10, 0), veth(3, "eth1", 11, 0)),
				nsWith("b", nil, veth(2, "eth0", 10, 0)),
			},
			wantPeers: map[string]string{"host/vethA": "a/eth0", "host/vethB": "a/eth1", "a/eth0": "host/vethA", "a/eth1": "host/vethB", "b/eth0": "?"},
			wantIDs:   map[string]map[int]string{"host": {0: "a"}, "a": {0: "host"}},
		},
		{
			name: "same namespace by index and by name",
			ns: []*Namespace{
				nsWith("host", nil,
					veth(4, "v0", 5, -1), veth(5, "v1", 4, -1),
					&Link{Index: 6, Name: "w0", Kind: "veth", Peer: &Peer{Ifname: "w1", NetnsID: -1}},
					&Link{Index: 7, Name: "w1", Kind: "veth", Peer: &Peer{Ifname: "w0", NetnsID: -1}},
				),
			},
			wantPeers: map[string]string{"host/v0": "host/v1", "host/v1": "host/v0", "host/w0": "host/w1", "host/w1": "host/w0"},
			wantIDs:   map[string]map[int]string{},
		},
		{
			name: "same-namespace peer is never looked for elsewhere",
			ns: []*Namespace{
				nsWith("host", nil, veth(4, "v0", 5, -1)),
				nsWith("a", nil, veth(5, "eth0", 4, -1)),
			},
			wantPeers: map[string]string{"host/v0": "?", "a/eth0": "?"},
			wantIDs:   map[string]map[int]string{},
		},
		{
			name: "a vlan's parent is not its peer",
			ns: []*Namespace{
				nsWith("host", nil,
					&Link{Index: 2, Name: "eth0", Kind: "device"},
					&Link{Index: 3, Name: "eth0.100", Kind: "vlan", Peer: &Peer{Index: 2, Ifname: "eth0", NetnsID: -1}},
				),
			},
			wantPeers: map[string]string{"host/eth0.100": "?"},
			wantIDs:   map[string]map[int]string{},
		},
		{
			name: "a peer namespace printed by name is looked for only there",
			ns: []*Namespace{
				// `ip` printed "link-netns b" (NetnsID -2 from the parser).
				nsWith("host", nil, &Link{Index: 10, Name: "vethA", Kind: "veth", Peer: &Peer{Index: 2, NetnsID: -2, Netns: "b"}}),
				nsWith("a", nil, veth(2, "eth0", 10, 0)),
				nsWith("b", nil, veth(2, "eth0", 10, 3)),
			},
			wantPeers: map[string]string{"host/vethA": "b/eth0", "a/eth0": "?", "b/eth0": "host/vethA"},
			wantIDs:   map[string]map[int]string{"b": {3: "host"}},
		},
		{
			name: "a peer namespace named but not in the model",
			ns: []*Namespace{
				nsWith("host", nil, &Link{Index: 10, Name: "vethA", Kind: "veth", Peer: &Peer{Index: 2, NetnsID: -2, Netns: "elsewhere"}}),
				nsWith("a", nil, veth(2, "eth0", 10, 0)),
			},
			wantPeers: map[string]string{"host/vethA": "elsewhere/", "a/eth0": "?"},
			wantIDs:   map[string]map[int]string{},
		},
		{
			name: "already resolved peers are kept",
			ns: []*Namespace{
				nsWith("host", nil, &Link{Index: 10, Name: "vethA", Kind: "veth", Peer: &Peer{Index: 2, NetnsID: 0, Netns: "a", Ifname: "eth0"}}),
				nsWith("a", nil, &Link{Index: 2, Name: "eth0", Kind: "veth", Peer: &Peer{Index: 10, NetnsID: 0, Netns: "host", Ifname: "vethA"}}),
				nsWith("b", nil, veth(2, "eth0", 10, 0)),
			},
			wantPeers: map[string]string{"host/vethA": "a/eth0", "a/eth0": "host/vethA", "b/eth0": "?"},
			wantIDs:   map[string]map[int]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Model{Namespaces: tt.ns}
			ResolvePeers(m)
			if d := cmp.Diff(tt.wantPeers, peersOf(m)); d != "" {
				t.Errorf("peers (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantIDs, idsOf(m)); d != "" {
				t.Errorf("netnsids (-want +got):\n%s", d)
			}
		})
	}
}

func TestResolvePeersNil(t *testing.T) {
	ResolvePeers(nil)
	m := &Model{Namespaces: []*Namespace{nsWith("host", nil, &Link{Index: 1, Name: "lo"}, veth(3, "v", 0, 0))}}
	ResolvePeers(m)
	if got := m.Namespaces[0].Links[1].Peer.Netns; got != "" {
		t.Errorf("peer index 0 resolved to %q", got)
	}
}
