package topology_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/topology"
)

// TestBadChecksums: the hop where packets first carry a wrong checksum
// though complete is named with the hop before it where they were right;
// a frame whose checksum is merely not computed yet (CSUMNOTREADY) is
// never bad, not even where the rest of its way shows nothing; later bad
// sightings of the same packet are not counted again; a packet bad where
// first seen came in bad.
func TestBadChecksums(t *testing.T) {
	seen := func(pkt string, order int, hop string, valid, notReady bool) topology.ChecksumSighting {
		return topology.ChecksumSighting{Packet: pkt, Order: order, Hop: hop, Netns: hop[:len(hop)-len("/x")], Proto: "tcp", Valid: valid, NotReady: notReady}
	}
	var in []topology.ChecksumSighting
	for _, p := range []string{"a", "b", "c"} { // good on the underlay, bad after decapsulation
		in = append(in, seen(p, 0, "host/e", true, false), seen(p, 1, "ovl/v", false, false), seen(p, 2, "task/t", false, false))
	}
	in = append(in,
		seen("d", 0, "task/t", false, true), seen("d", 1, "ovl/v", false, true), // partial all the way: fine
		seen("e", 0, "task/t", false, true), seen("e", 1, "ovl/v", true, false), // partial, then filled in
		seen("f", 1, "ovl/v", false, false), // first seen bad
	)
	want := []topology.ChecksumBreak{
		{Hop: "ovl/v", Netns: "ovl", Proto: "tcp", After: "host/e", Packets: 3},
		{Hop: "ovl/v", Netns: "ovl", Proto: "tcp", After: "", Packets: 1},
	}
	if d := cmp.Diff(want, topology.BadChecksums(in)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got := topology.BadChecksums(in[9:13]); len(got) != 0 {
		t.Errorf("not-ready frames blamed: %+v", got)
	}
}
