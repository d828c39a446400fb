package topology

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestXfrmTextRoundTrip(t *testing.T) {
	in := XfrmState{Proto: XfrmComp, SPI: 0x5e4c7f1a, Mode: XfrmBEET, Dir: SADirIn}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"proto":"comp","spi":"0x5e4c7f1a","reqid":0,"mode":"beet"`; !strings.Contains(string(b), want) {
		t.Errorf("json %s lacks %s", b, want)
	}
	var out XfrmState
	if err := json.Unmarshal(b, &out); err != nil || !cmp.Equal(in, out, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })) {
		t.Errorf("round trip: %+v %v", out, err)
	}
	for _, p := range []XfrmProto{XfrmESP, XfrmAH, XfrmComp, XfrmRoute2, XfrmHAO, XfrmIPsecAny, 17} {
		var q XfrmProto
		if b, _ := p.MarshalText(); q.UnmarshalText(b) != nil || q != p {
			t.Errorf("proto %d: %s read back as %d", p, b, q)
		}
	}
	for d := XfrmIn; d <= XfrmFwd+1; d++ {
		var e XfrmDir
		if b, _ := d.MarshalText(); e.UnmarshalText(b) != nil || e != d {
			t.Errorf("dir %d: %s read back as %d", d, b, e)
		}
	}
	if got := XfrmFlagNames(1|4|64, XfrmPolicyFlagNames[:]); !cmp.Equal(got, []string{"localok", "0x44"}) {
		t.Errorf("flags %q", got)
	}
}

// TestPairSPIs: Docker's SAs to two peers, key rotation's extra inbound SA,
// an SA between two other hosts, and the policies; local addresses from the
// links, or from the out policies' templates when no link was read.
func TestPairSPIs(t *testing.T) {
	a := netip.MustParseAddr
	st := func(src, dst string, spi SPI) XfrmState {
		return XfrmState{Src: a(src), Dst: a(dst), Proto: XfrmESP, SPI: spi, Reqid: 0xd0c4e3}
	}
	x := &Xfrm{
		States: []XfrmState{
			st("192.0.2.11", "192.0.2.10", 0x30), st("192.0.2.10", "192.0.2.11", 0x20), st("192.0.2.11", "192.0.2.10", 0x10),
			st("192.0.2.10", "192.0.2.12", 0x40), st("198.51.100.1", "198.51.100.2", 0x50),
		},
		Policies: []XfrmPolicy{
			{Dir: XfrmOut, Tmpls: []XfrmTmpl{{Src: a("192.0.2.10"), Dst: a("192.0.2.12"), Proto: XfrmESP, SPI: 0x40}}},
			{Dir: XfrmIn, Tmpls: []XfrmTmpl{{Src: a("192.0.2.11"), Dst: a("192.0.2.10"), Proto: XfrmESP}}},
			{Dir: XfrmOut, Tmpls: []XfrmTmpl{{Src: a("192.0.2.10"), Dst: a("192.0.2.11"), Proto: XfrmESP, SPI: 0x20}}},
		},
	}
	want := []XfrmPeer{
		{Local: a("192.0.2.10"), Remote: a("192.0.2.11"),
			Out: []XfrmSA{{XfrmESP, 0x20, 0xd0c4e3, 1}}, In: []XfrmSA{{XfrmESP, 0x10, 0xd0c4e3, 2}, {XfrmESP, 0x30, 0xd0c4e3, 0}}, Policies: []int{2}},
		{Local: a("192.0.2.10"), Remote: a("192.0.2.12"), Out: []XfrmSA{{XfrmESP, 0x40, 0xd0c4e3, 3}}, In: []XfrmSA{}, Policies: []int{0}},
	}
	ns := &Namespace{NetnsRef: NetnsRef{Name: "host"}, Xfrm: x, Links: []*Link{{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")}}}}
	eq := cmp.Comparer(func(x, y netip.Addr) bool { return x == y })
	peers, foreign := ns.XfrmPeers()
	if d := cmp.Diff(want, peers, eq); d != "" || !cmp.Equal(foreign, []int{4}) {
		t.Errorf("foreign %v, peers (-want +got):\n%s", foreign, d)
	}
	// A bundle without ip-addr.txt: the out policies say which end is ours.
	ns.Links = nil
	peers, _ = ns.XfrmPeers()
	if d := cmp.Diff(want, peers, eq); d != "" {
		t.Errorf("without links (-want +got):\n%s", d)
	}
	if p, f := (&Namespace{}).XfrmPeers(); p != nil || f != nil {
		t.Errorf("not collected: %v %v", p, f)
	}
}
