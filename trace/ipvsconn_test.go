package trace

import (
	"net/netip"
	"strings"
	"testing"
)

// /proc/net/ip_vs_conn of an ingress sandbox on a Docker node (kernel
// 5.15), with an IPv6 line as newer kernels print them.
const ipvsConnText = `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C0A84D09 EBD0 AC120002 1F90 0A000006 1F90 TIME_WAIT       118
UDP C0A84D09 BC2D AC120002 14E9 0A000008 14E9 UDP             298
TCP 2001:0db8:0000:0000:0000:0000:0000:0001 EBD0 2001:0db8:0000:0000:0000:0000:0000:0002 1F90 2001:0db8:0000:0000:0000:0000:0000:0003 1F90 ESTABLISHED 899
`

func TestParseIPVSConn(t *testing.T) {
	got, err := ParseIPVSConn("ip_vs_conn", strings.NewReader(ipvsConnText))
	if err != nil {
		t.Fatal(err)
	}
	want := []IPVSConn{
		{Proto: "tcp", Client: netip.MustParseAddrPort("192.168.77.9:60368"), Virtual: netip.MustParseAddrPort("172.18.0.2:8080"), Dest: netip.MustParseAddrPort("10.0.0.6:8080"), State: "TIME_WAIT", Expires: 118},
		{Proto: "udp", Client: netip.MustParseAddrPort("192.168.77.9:48173"), Virtual: netip.MustParseAddrPort("172.18.0.2:5353"), Dest: netip.MustParseAddrPort("10.0.0.8:5353"), State: "UDP", Expires: 298},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries: %+v", len(got), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"TCP C0A84D09 EBD0\n", "TCP ZZA84D09 EBD0 AC120002 1F90 0A000006 1F90 X 1\n", "TCP C0A84D09 EBD0 AC120002 1F90 0A000006 1F90 X soon\n"} {
		if _, err := ParseIPVSConn("f", strings.NewReader(bad)); err == nil || !strings.HasPrefix(err.Error(), "f:1:") {
			t.Errorf("%q: error %v, want one naming f:1", bad, err)
		}
	}
}

func FuzzParseIPVSConn(f *testing.F) {
	f.Add(ipvsConnText)
	f.Fuzz(func(t *testing.T, s string) {
		ParseIPVSConn("fuzz", strings.NewReader(s))
	})
}
