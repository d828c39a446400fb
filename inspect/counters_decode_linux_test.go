package inspect

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/topology"
)

// linkMsg is an RTM_NEWLINK payload with a name, IFLA_STATS64 of n
// counters (counter i = i+1) and, when carrier >= 0, IFLA_CARRIER_CHANGES.
func linkMsg(name string, n, carrier int) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b = append(b, attr(unix.IFLA_IFNAME, append([]byte(name), 0))...)
	stats := make([]byte, 0, 8*n)
	for i := range n {
		stats = binary.NativeEndian.AppendUint64(stats, uint64(i+1))
	}
	b = append(b, attr(unix.IFLA_STATS64, stats)...)
	if carrier >= 0 {
		b = append(b, attr(unix.IFLA_CARRIER_CHANGES, u32(uint32(carrier)))...)
	}
	return b
}

// TestDecodeLinkStats: every counter by its sysfs name, but the four
// iproute2 prints only when not 0, which a kernel's shorter struct lacks
// anyway; carrier_changes when the kernel gives it.
func TestDecodeLinkStats(t *testing.T) {
	name, lc, err := decodeLinkStats(linkMsg("vxlan0", len(topology.LinkStatNames), 3))
	if err != nil || name != "vxlan0" || len(lc) != len(topology.LinkStatNames)+1 || lc["rx_packets"] != 1 || lc["rx_otherhost_dropped"] != 25 || lc["carrier_changes"] != 3 {
		t.Errorf("%s %v %v", name, lc, err)
	}
	// A 4.x kernel's 24 counters, no carrier changes: rx_nohandler is 24,
	// printed; no otherhost.
	_, lc, _ = decodeLinkStats(linkMsg("eth0", 24, -1))
	if _, ok := lc["rx_otherhost_dropped"]; ok || lc["rx_nohandler"] != 24 || len(lc) != 24 {
		t.Errorf("short struct: %v", lc)
	}
	for _, bad := range [][]byte{make([]byte, 3), append(make([]byte, unix.SizeofIfInfomsg), 2, 0, 1, 0)} {
		if _, _, err := decodeLinkStats(bad); err == nil {
			t.Errorf("%x: no error", bad)
		}
	}
}

func FuzzDecodeLinkStats(f *testing.F) {
	f.Add(linkMsg("eth0", 25, 1))
	f.Add(linkMsg("x", 3, -1))
	f.Fuzz(func(t *testing.T, data []byte) {
		name, lc, err := decodeLinkStats(data)
		if err == nil && lc != nil && name == "" {
			t.Fatalf("counters %v without a name", lc)
		}
	})
}
