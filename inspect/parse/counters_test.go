package parse

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshtrace/meshtrace/topology"
)

// The counters of fixtures/cmdout/record-counters.sh: namespace b after
// three datagrams to a closed port, two dropped by a rule, two SYNs
// dropped by the INPUT policy, one refused connection and one datagram
// without a route.
func TestSNMPRecorded(t *testing.T) {
	snmp := parseSNMP(t, "snmp.txt")
	for name, want := range map[string]int64{
		"UdpNoPorts": 3, "IcmpOutDestUnreachs": 3, "IcmpMsgOutType3": 3, "IpOutNoRoutes": 1, "TcpMaxConn": -1, "TcpOutRsts": 1,
	} {
		if got, ok := snmp[name]; !ok || got != want {
			t.Errorf("%s = %d (present %v), want %d", name, got, ok, want)
		}
	}
	netstat := parseSNMP(t, "netstat.txt")
	for _, name := range []string{"TcpExtListenDrops", "TcpExtIPReversePathFilter", "IpExtInNoRoutes", "IpExtInOctets"} {
		if _, ok := netstat[name]; !ok {
			t.Errorf("netstat.txt: no %s", name)
		}
	}
	// nstat -az names them the same, with the same values (nothing moved
	// between the recordings).
	nstat := parseSNMP(t, "nstat-snmp.txt")
	n := 0
	for name, v := range nstat {
		w, ok := snmp[name]
		if !ok {
			w, ok = netstat[name]
		}
		if ok {
			n++
			if v != w && !strings.HasPrefix(name, "IpExtInOctets") && !strings.HasPrefix(name, "IpExtOutOctets") {
				t.Errorf("%s: nstat %d, /proc %d", name, v, w)
			}
		}
	}
	if n < 100 {
		t.Errorf("only %d counters in common with nstat -az", n)
	}
	if v := parseSNMP(t, "snmp6-snmp.txt"); v["Ip6OutNoRoutes"] != 0 || len(v) < 50 {
		t.Errorf("snmp6: %d counters", len(v))
	}
}

func parseSNMP(t *testing.T, name string) map[string]int64 {
	t.Helper()
	v, bad, err := SNMP(name, strings.NewReader(readFixture(t, cmdout("counters", name))))
	if err != nil || len(bad) > 0 {
		t.Fatalf("%s: err %v, not understood %+v", name, err, bad)
	}
	return v
}

func TestConntrackStatRecorded(t *testing.T) {
	proc, bad, err := ConntrackStat("p", strings.NewReader(readFixture(t, cmdout("counters", "nf_conntrack-stat.txt"))))
	if err != nil || len(bad) > 0 || proc["entries"] != 3 || len(proc) != 17 {
		t.Errorf("/proc/net/stat/nf_conntrack: %v %v %+v, want entries 3 and 17 columns", proc, err, bad)
	}
	cs, bad, err := ConntrackStat("c", strings.NewReader(readFixture(t, cmdout("counters", "conntrack-S-nf_conntrack-stat.txt"))))
	if _, ok := cs["insert_failed"]; err != nil || len(bad) > 0 || !ok {
		t.Errorf("conntrack -S: %v %v %+v", cs, err, bad)
	}
	// Rows are per CPU: summed, but for the table's size.
	in := "entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete\n" +
		"0000000a  00000000 00000001 00000000 00000002 00000000 00000000 00000000 00000005 00000001 00000000 00000003 00000000  00000000 00000000 00000000 \n" +
		"0000000a  00000000 00000001 00000000 0000000e 00000000 00000000 00000000 00000005 00000000 00000000 00000000 00000000  00000000 00000000 00000000 \n"
	got, bad, err := ConntrackStat("old", strings.NewReader(in))
	if err != nil || len(bad) > 0 || got["entries"] != 10 || got["invalid"] != 16 || got["insert_failed"] != 1 || got["early_drop"] != 3 || got["insert"] != 10 {
		t.Errorf("the kernel 4.x header: %v %v %+v", got, err, bad)
	}
	got, _, _ = ConntrackStat("c", strings.NewReader("cpu=0 found=1 invalid=2 drop=4\ncpu=1 found=0 invalid=3 drop=1\n"))
	if d := cmp.Diff(map[string]uint64{"found": 1, "invalid": 5, "drop": 5}, got); d != "" {
		t.Errorf("conntrack -S summed (-want +got):\n%s", d)
	}
}

func TestIPLinkStatsRecorded(t *testing.T) {
	ss := parseLinkStats(t, "ip-stats.txt")
	vb := ss["vb"]
	if vb["rx_packets"] != 15 || vb["tx_packets"] != 10 || vb["carrier_changes"] != 2 || len(ss["lo"]) != 22 {
		t.Errorf("ip -s -s link: vb %v, lo %d counters", vb, len(ss["lo"]))
	}
	if _, ok := vb["rx_nohandler"]; ok {
		t.Error("rx_nohandler is printed only when not 0")
	}
	// ip -s link and ip -s addr: the first lines only.
	s := parseLinkStats(t, "s-ip-stats.txt")
	for k, v := range s["vb"] {
		if vb[k] != v {
			t.Errorf("ip -s link %s = %d, ip -s -s link %d", k, v, vb[k])
		}
	}
	if len(s["vb"]) != 12 {
		t.Errorf("ip -s link: %d counters, want the 12 of RX: and TX:", len(s["vb"]))
	}
	if d := cmp.Diff(s, parseLinkStats(t, "addr-ip-stats.txt")); d != "" {
		t.Errorf("ip -s link vs ip -s addr:\n%s", d)
	}
}

func parseLinkStats(t *testing.T, name string) map[string]topology.LinkCounters {
	t.Helper()
	v, bad, err := IPLinkStats(name, strings.NewReader(readFixture(t, cmdout("counters", name))))
	if err != nil || len(bad) > 0 {
		t.Fatalf("%s: err %v, not understood %+v", name, err, bad)
	}
	return v
}

// TestIPLinkStatsOlder: iproute2 4.19's and 5.10's headers (ipaddress.c of
// those tags, print_link_stats64), whose column order and names differ.
func TestIPLinkStatsOlder(t *testing.T) {
	in := "3: eth0@if4: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP mode DEFAULT group default\n" +
		"    link/ether 02:42:0a:ff:00:02 brd ff:ff:ff:ff:ff:ff link-netnsid 0\n" +
		"    RX: bytes  packets  errors  dropped overrun mcast   \n" +
		"    1000       10       1       2       3       4       \n" +
		"    RX errors: length   crc     frame   fifo    missed   nohandler\n" +
		"               5        6       7       8       9       11     \n" +
		"    TX: bytes  packets  errors  dropped carrier collsns \n" +
		"    2000       20       0       12      0       0       \n" +
		"    TX errors: aborted  fifo   window heartbeat transns\n" +
		"               0        0       0       0       1      \n"
	got, bad, err := IPLinkStats("f", strings.NewReader(in))
	want := topology.LinkCounters{"rx_bytes": 1000, "rx_packets": 10, "rx_errors": 1, "rx_dropped": 2, "rx_over_errors": 3,
		"multicast": 4, "rx_length_errors": 5, "rx_crc_errors": 6, "rx_frame_errors": 7, "rx_fifo_errors": 8,
		"rx_missed_errors": 9, "rx_nohandler": 11, "tx_bytes": 2000, "tx_packets": 20, "tx_errors": 0, "tx_dropped": 12,
		"tx_carrier_errors": 0, "collisions": 0, "tx_aborted_errors": 0, "tx_fifo_errors": 0, "tx_window_errors": 0,
		"tx_heartbeat_errors": 0, "carrier_changes": 1}
	if d := cmp.Diff(want, got["eth0"]); err != nil || len(bad) > 0 || d != "" {
		t.Errorf("err %v, not understood %+v, eth0 (-want +got):\n%s", err, bad, d)
	}
	// -h: rounded numbers are no counters.
	_, bad, _ = IPLinkStats("f", strings.NewReader("1: lo: <LOOPBACK> mtu 1\n    RX: bytes packets errors dropped missed mcast\n    1.2K 10 0 0 0 0\n"))
	if len(bad) != 1 || !strings.Contains(bad[0].Reason, "-h") {
		t.Errorf("ip -h -s link: %+v", bad)
	}
}
