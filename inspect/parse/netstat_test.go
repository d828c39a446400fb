package parse

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/meshtrace/meshtrace/topology"
)

// TestNetstatVariants: net-tools' netstat listings of one namespace
// (record-netstat.sh: TCP and UDP, v4, v6, v6only, IPv4-mapped, bound to a
// device, a connected UDP socket and an established TCP connection) read as
// the same listening sockets as ss -Htuln of the same sockets at the same
// time.
func TestNetstatVariants(t *testing.T) {
	dir := func(f string) string { return cmdout("netstat-variants", f) }
	want := parseClean(t, dir("ss.txt"), SS)
	if len(want) < 12 {
		t.Fatalf("ss.txt lists %d sockets: a bad recording", len(want))
	}
	opts := cmp.Options{cmpopts.EquateComparable(netip.Addr{}), cmpopts.SortSlices(func(x, y topology.Socket) bool {
		return x.Proto < y.Proto || x.Proto == y.Proto && (x.Port < y.Port || x.Port == y.Port && x.Addr.Less(y.Addr))
	})}
	for _, f := range []string{"netstat-tuln.txt", "netstat-tulpn.txt", "netstat-tuan.txt", "netstat-an.txt"} {
		got := parseClean(t, dir(f), SS)
		if d := cmp.Diff(want, got, opts); d != "" {
			t.Errorf("%s (-ss +netstat):\n%s", f, d)
		}
	}
}
