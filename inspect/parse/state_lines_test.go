package parse

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/topology"
)

// Shapes the recordings here cannot show (other versions, other flags),
// and lines that are not understood.

func TestIPRouteLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []topology.Route
		bad  string // reason of the one line not understood
	}{
		{in: "2 10.0.0.0/8 dev lo table 255 proto 2 scope 254 src 10.0.0.1", // ip -N
			want: []topology.Route{{Dst: netip.MustParsePrefix("10.0.0.0/8"), Dev: "lo", Src: netip.MustParseAddr("10.0.0.1"), Table: 255}}},
		{in: "default via inet6 fe80::1 dev eth0 table main", want: []topology.Route{{Dst: topology.DefaultRoute, Gateway: netip.MustParseAddr("fe80::1"), Dev: "eth0"}}},
		{in: "0.0.0.0/0 dev eth0 src 0.0.0.0", want: []topology.Route{{Dst: topology.DefaultRoute, Dev: "eth0"}}},
		{in: "10.1.2.3/16 dev eth0 table 254", want: []topology.Route{{Dst: netip.MustParsePrefix("10.1.0.0/16"), Dev: "eth0"}}},
		{in: "10.1.0.0/16 proto static\n10.2.0.0/16 dev e", want: []topology.Route{{Dst: netip.MustParsePrefix("10.1.0.0/16")}, {Dst: netip.MustParsePrefix("10.2.0.0/16"), Dev: "e"}}},
		{in: "\tnexthop via 10.0.0.1 dev eth0\ndefault dev e", want: []topology.Route{{Dst: topology.DefaultRoute, Dev: "e"}}, bad: "nexthop without a route"},
		{in: "10.0.0.0/8 dev e table custom\ndefault dev e", want: []topology.Route{{Dst: topology.DefaultRoute, Dev: "e"}}, bad: "is a name from rt_tables"},
		{in: "10.0.0.0/8 dev\ndefault dev e", want: []topology.Route{{Dst: topology.DefaultRoute, Dev: "e"}}, bad: "dev without a value"},
	} {
		got, bad, err := IPRoute("r", strings.NewReader(c.in))
		checkLines(t, c.in, c.want, got, bad, err, c.bad)
	}
}

func TestNeighFDBLines(t *testing.T) {
	n, bad, err := IPNeigh("n", strings.NewReader("10.0.0.1 dev eth0 lladdr 02:42:0A:00:00:01 extern_learn REACHABLE PROBE\n10.0.0.2 dev eth0 proxy\nfe80::1 dev eth0 lladdr zz STALE\n10.9.0.1 dev gre1 lladdr 192.0.2.1 PERMANENT\n"))
	checkLines(t, "neigh", []topology.Neigh{
		{IP: netip.MustParseAddr("10.0.0.1"), MAC: topology.MustParseMAC("02:42:0a:00:00:01"), Dev: "eth0", State: "reachable,probe"},
		{IP: netip.MustParseAddr("10.0.0.2"), Dev: "eth0", State: "none"},
		// a tunnel's link address is an IPv4 address: its bytes, as netlink has them
		{IP: netip.MustParseAddr("10.9.0.1"), MAC: topology.MustParseMAC("c0:00:02:01"), Dev: "gre1", State: "permanent"},
	}, n, bad, err, `bad lladdr "zz"`)
	f, bad, err := BridgeFDB("f", strings.NewReader("02:42:0a:00:00:01 dev vx vlan 1 dst 192.0.2.1 port 4790 vni 42 via eth0 self extern_learn state=0x42\n02:42:0a:00:00:02 master br0\n"))
	checkLines(t, "fdb", []topology.FDB{{MAC: topology.MustParseMAC("02:42:0a:00:00:01"), Dev: "vx", Dst: netip.MustParseAddr("192.0.2.1"), State: "reachable,noarp"}}, f, bad, err, "no dev")
}

// TestNeighLLAddrNotMAC: only an IPv4 address stands in for a link address
// (ipip, gre and sit devices); an IPv6 literal such as "00::" is neither a
// MAC nor a tunnel's IPv4 address (found by FuzzIPNeigh).
func TestNeighLLAddrNotMAC(t *testing.T) {
	for _, ll := range []string{"00::", "fe80::1", "::ffff:192.0.2.1"} {
		in := "10.0.0.9 dev e lladdr " + ll + " PERMANENT\n10.0.0.1 dev e lladdr 02:42:0a:00:00:01 STALE\n"
		n, bad, err := IPNeigh("n", strings.NewReader(in))
		checkLines(t, ll, []topology.Neigh{{IP: netip.MustParseAddr("10.0.0.1"), MAC: topology.MustParseMAC("02:42:0a:00:00:01"), Dev: "e", State: "stale"}}, n, bad, err, "bad lladdr")
	}
}

func TestSysctlLines(t *testing.T) {
	s, bad, err := Sysctl("s", strings.NewReader("net.ipv4.ip_forward = 1\nnet.ipv4.ip_forward=0\n a.b =  x y \nsysctl: permission denied on key 'x'\n"))
	checkLines(t, "sysctl", topology.Sysctls{"net.ipv4.ip_forward": "0", "a.b": "x y"}, s, bad, err, `not "key = value"`)
}

func TestSSLines(t *testing.T) {
	a := netip.MustParseAddr
	s, bad, err := SS("s", strings.NewReader(strings.Join([]string{
		"State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process",
		"LISTEN 0      4096         0.0.0.0:80        0.0.0.0:*     users:((\"python3\",pid=1,fd=3))", // ss -tlnp
		"UNCONN 0      0               [fe80::1]%eth0:546 [::]:*",
		"u_str LISTEN 0 4096 /run/x.sock 123 * 0",
		"tcp ESTAB 0 0 10.0.0.1:22 10.0.0.2:5000",
		"tcp LISTEN 0 128 0.0.0.0:http 0.0.0.0:*",
	}, "\n")))
	checkLines(t, "ss", []topology.Socket{{Proto: "tcp", Addr: a("0.0.0.0"), Port: 80}, {Proto: "udp", Addr: a("fe80::1"), Port: 546}},
		s, bad, err, "is not a number (collect with ss -n)")
}

func TestConntrackLines(t *testing.T) {
	a := netip.MustParseAddr
	in := strings.Join([]string{
		"tcp      6 431999 LISTEN src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=4294967295 zone=65535 use=1 id=7",
		"sctp     132 10 ESTABLISHED src=::ffff:10.0.0.1 dst=fd00::2 sport=1 dport=2 src=fd00::2 dst=10.0.0.1 sport=2 dport=1 zone-orig=3 use=1",
		"conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.",
		"udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] mark=0 use=1",
	}, "\n")
	c, bad, err := Conntrack("c", strings.NewReader(in))
	checkLines(t, "conntrack", []topology.Conntrack{
		{Proto: "tcp", State: "SYN_SENT2", Timeout: 431999, Mark: 1<<32 - 1, Zone: 65535,
			Orig: topology.Tuple{Src: a("10.0.0.1"), Dst: a("10.0.0.2"), SPort: 1, DPort: 2}, Reply: topology.Tuple{Src: a("10.0.0.2"), Dst: a("10.0.0.1"), SPort: 2, DPort: 1}},
		{Proto: "sctp", Timeout: 10, // only TCP's state is kept
			Orig: topology.Tuple{Src: a("10.0.0.1"), Dst: a("fd00::2"), SPort: 1, DPort: 2}, Reply: topology.Tuple{Src: a("fd00::2"), Dst: a("10.0.0.1"), SPort: 2, DPort: 1}},
	}, c, bad, err, "want an original and a reply tuple")
}

func TestIpvsadmTimeout(t *testing.T) {
	got, err := IpvsadmTimeout("t", strings.NewReader(readFixture(t, cmdout("ipvsadm-from-source", "ipvsadm-timeout.txt"))))
	if err != nil || *got != (topology.IPVSTimeouts{TCP: 7200, TCPFin: 60, UDP: 45}) {
		t.Errorf("timeouts %+v, %v", got, err)
	}
	for in, want := range map[string]string{
		"":                                    `t: no "Timeout (tcp tcpfin udp):" line`,
		"Timeout (tcp tcpfin udp): 900 120\n": `t:1: not ipvsadm -L --timeout output`,
		"\nTimeout (tcp tcpfin udp): 900 120 x\n":                            `t:2: not ipvsadm -L --timeout output: bad timeout "x"`,
		"Timeout (tcp tcpfin udp): 1 2 3\nTimeout (tcp tcpfin udp): 1 2 3\n": "t:2: a second line",
		"Prot LocalAddress:Port Scheduler Flags\n":                           "t:1: not ipvsadm -L --timeout output",
	} {
		_, err := IpvsadmTimeout("t", strings.NewReader(in))
		var pe *Error
		if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %s…", in, err, want)
		}
	}
}

// checkLines: got is want, and bad holds exactly one line, not understood
// for reason (nothing when reason is "").
func checkLines[T any](t *testing.T, what string, want, got T, bad []topology.Unparsed, err error, reason string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); d != "" {
		t.Errorf("%q (-want +got):\n%s", what, d)
	}
	switch {
	case reason == "" && len(bad) > 0:
		t.Errorf("%q: not understood %+v", what, bad)
	case reason != "" && (len(bad) != 1 || !strings.Contains(bad[0].Reason, reason) || bad[0].Line < 1 || bad[0].Text == ""):
		t.Errorf("%q: not understood %+v, want one line: %s", what, bad, reason)
	}
}
