package parse

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

// genTable reads the services=(...) and dests=(...) arrays of
// fixtures/cmdout/ipvsadm-from-source/gen.sh, the data the ipvsadm fixtures
// were printed from: the expectation for every format.
type genSvc struct {
	kind, addr   string
	v6           bool
	sched        string
	persist      int
	stats        [5]uint64
	dests        []genDest
	fwmark       uint32
	addrp        netip.AddrPort
	proto, label string
}

type genDest struct {
	addr             netip.AddrPort
	fwd              string
	weight, act, ina int
	stats            [5]uint64
}

func genTable(t *testing.T) []*genSvc {
	t.Helper()
	src := readFixture(t, cmdout("ipvsadm-from-source", "gen.sh"))
	arr := func(name string) [][]string {
		_, rest, ok := strings.Cut(src, "\n"+name+"=(\n")
		if !ok {
			t.Fatalf("gen.sh has no %s array", name)
		}
		body, _, _ := strings.Cut(rest, "\n)")
		var out [][]string
		for _, l := range strings.Split(body, "\n") {
			out = append(out, strings.Fields(strings.Trim(strings.TrimSpace(l), `"`)))
		}
		return out
	}
	num := func(s string) uint64 {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("gen.sh: %q: %v", s, err)
		}
		return v
	}
	var svcs []*genSvc
	for _, f := range arr("services") {
		s := &genSvc{kind: f[0], addr: f[1], v6: f[2] == "1", sched: f[3], persist: int(num(f[4]))}
		for i := range s.stats {
			s.stats[i] = num(f[5+i])
		}
		if s.kind == "FWM" {
			s.fwmark = uint32(num(s.addr))
		} else {
			s.addrp = netip.MustParseAddrPort(s.addr)
			s.proto = strings.ToLower(s.kind)
		}
		svcs = append(svcs, s)
	}
	for _, f := range arr("dests") {
		s := svcs[num(f[0])]
		d := genDest{addr: netip.MustParseAddrPort(f[1]), fwd: strings.ToLower(f[2]),
			weight: int(num(f[3])), act: int(num(f[4])), ina: int(num(f[5]))}
		for i := range d.stats {
			d.stats[i] = num(f[6+i])
		}
		s.dests = append(s.dests, d)
	}
	return svcs
}

// shown is what ipvsadm prints for a counter without --exact, read back:
// print_largenum keeps 8 digits and divides larger values by 10^3, 10^6,
// 10^9 or 10^12.
func shown(v uint64) uint64 {
	switch {
	case v < 1e8:
		return v
	case v < 1e9:
		return v / 1e3 * 1e3
	case v < 1e11:
		return v / 1e6 * 1e6
	case v < 1e14:
		return v / 1e9 * 1e9
	}
	return v / 1e12 * 1e12
}

func parseIPVSFile(t *testing.T, path string) *topology.IPVS {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := Ipvsadm(path, f)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestIpvsadmFormats(t *testing.T) {
	gen := genTable(t)
	for _, tc := range []struct {
		file  string
		stats bool
		exact bool
		conns bool // weight, forward and connection counts shown
		rate  bool // --rate: rates, which the model does not keep
	}{
		{"ipvsadm-save-n.txt", false, false, false, false},
		{"ipvsadm-Ln.txt", false, false, true, false},
		{"ipvsadm-Ln-stats.txt", true, false, false, false},
		{"ipvsadm-Ln-stats-exact.txt", true, true, false, false},
		{"ipvsadm-Ln-rate.txt", false, false, false, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			v := parseIPVSFile(t, cmdout("ipvsadm-from-source", tc.file))
			if !v.Available || len(v.Services) != len(gen) {
				t.Fatalf("available %v, %d services, want %d", v.Available, len(v.Services), len(gen))
			}
			for i, g := range gen {
				s := v.Services[i]
				if s.FWMark != g.fwmark || s.Proto != g.proto || s.Addr != g.addrp.Addr() || s.Port != int(g.addrp.Port()) || s.Impl != "ipvs" {
					t.Errorf("service %d: %+v, want %+v", i, s, g)
				}
				if tc.stats || tc.rate {
					if tc.stats {
						checkStats(t, s.Stats, g.stats, tc.exact)
					} else if s.Stats != nil {
						t.Errorf("service %d: rates taken for counters: %+v", i, s.Stats)
					}
					if s.Scheduler != "" {
						t.Errorf("scheduler %q in --stats/--rate output", s.Scheduler)
					}
				} else {
					if s.Scheduler != g.sched || s.Persistent != g.persist || s.Stats != nil {
						t.Errorf("service %d: sched %q persistent %d stats %v, want %q %d", i, s.Scheduler, s.Persistent, s.Stats, g.sched, g.persist)
					}
				}
				if len(s.Dests) != len(g.dests) {
					t.Fatalf("service %d: %d dests, want %d", i, len(s.Dests), len(g.dests))
				}
				for j, gd := range g.dests {
					d := s.Dests[j]
					if d.Addr != gd.addr.Addr() || d.Port != int(gd.addr.Port()) {
						t.Errorf("service %d dest %d: %v:%d, want %v", i, j, d.Addr, d.Port, gd.addr)
					}
					switch {
					case tc.stats || tc.rate:
						if tc.stats {
							checkStats(t, d.Stats, gd.stats, tc.exact)
						} else if d.Stats != nil {
							t.Errorf("rates taken for counters: %+v", d.Stats)
						}
						if d.Forward != "" || d.Weight != 0 || !d.WeightUnknown {
							t.Errorf("forward/weight invented in --stats/--rate: %+v", d)
						}
					case tc.conns:
						if d.Forward != gd.fwd || d.Weight != gd.weight || d.ActiveConns != gd.act || d.InactConns != gd.ina {
							t.Errorf("service %d dest %d: %+v, want %+v", i, j, d, gd)
						}
					default: // ipvsadm-save: -g stands for route and local
						fwd := gd.fwd
						if fwd == "local" {
							fwd = "route"
						}
						if d.Forward != fwd || d.Weight != gd.weight || d.ActiveConns != 0 {
							t.Errorf("service %d dest %d: %+v, want forward %s weight %d", i, j, d, fwd, gd.weight)
						}
					}
				}
			}
		})
	}
}

func checkStats(t *testing.T, got *topology.IPVSStats, want [5]uint64, exact bool) {
	t.Helper()
	if got == nil {
		t.Errorf("no stats")
		return
	}
	g := [5]uint64{got.Conns, got.InPkts, got.OutPkts, got.InBytes, got.OutBytes}
	for i := range want {
		w := want[i]
		if !exact {
			w = shown(w)
		}
		if g[i] != w {
			t.Errorf("counter %d = %d, want %d", i, g[i], w)
		}
	}
}

// TestIpvsadmLines: single services in shapes the fixtures lack.
func TestIpvsadmLines(t *testing.T) {
	head := "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
	tests := []struct {
		name, in string
		check    func(*testing.T, *topology.IPVS)
	}{
		{"empty save", "", func(t *testing.T, v *topology.IPVS) {
			if !v.Available || v.Services == nil || len(v.Services) != 0 {
				t.Errorf("%+v", v)
			}
		}},
		{"no services", head, func(t *testing.T, v *topology.IPVS) {
			if len(v.Services) != 0 {
				t.Errorf("%+v", v)
			}
		}},
		{"persistent mask, flags, sctp", head +
			"TCP  10.0.0.1:80 sh (sh-port,sh-fallback) persistent 900 mask 255.255.255.0 pe sip ops\n" +
			"SCTP 10.0.0.1:9 rr\n  -> 10.0.0.2:9                   Masq    -1     0          0\n",
			func(t *testing.T, v *topology.IPVS) {
				s := v.Services[0]
				if s.Scheduler != "sh" || s.Persistent != 900 || s.Proto != "tcp" {
					t.Errorf("%+v", s)
				}
				if s := v.Services[1]; s.Proto != "sctp" || s.Dests[0].Weight != -1 {
					t.Errorf("%+v %+v", s, s.Dests[0])
				}
			}},
		{"tun-info", "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n" +
			"UDP  10.0.0.1:53 rr\n  -> 10.0.0.2:53                  Tunnel  gue:6080:nocsum 3      1          2\n",
			func(t *testing.T, v *topology.IPVS) {
				d := v.Services[0].Dests[0]
				if d.Forward != "tunnel" || d.Weight != 3 || d.ActiveConns != 1 || d.InactConns != 2 {
					t.Errorf("%+v", d)
				}
			}},
		{"save options", "-A -t 10.0.0.1:80 -s wlc -p -M 255.255.255.0 --pe sip -b sh-port ops\n" +
			"-A --udp-service [::1]:53 --scheduler rr -o\n" +
			"-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -x 10 -y 5\n" +
			"-a --udp-service [::1]:53 --real-server [::2]:53 --ipip --weight 4 --tun-type gue --tun-port 6080 --tun-nocsum\n",
			func(t *testing.T, v *topology.IPVS) {
				s := v.Services[0]
				if s.Persistent != 300 || s.Dests[0].Forward != "route" || s.Dests[0].Port != 8080 {
					t.Errorf("%+v %+v", s, s.Dests[0])
				}
				s = v.Services[1]
				if s.Addr != netip.MustParseAddr("::1") || s.Dests[0].Forward != "tunnel" || s.Dests[0].Weight != 4 {
					t.Errorf("%+v %+v", s, s.Dests[0])
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Ipvsadm("t", strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, v)
		})
	}
}

func TestIpvsadmErrors(t *testing.T) {
	head := "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
	stats := "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n"
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"iptables", "*filter\n", 1, "not ipvsadm output"},
		{"kernel without ipvs", "Can't initialize ipvs: Protocol not available\n", 1, "not ipvsadm output"},
		{"hostnames", head + "TCP  web.example.com:http wlc\n", 4, "not numeric"},
		{"dest first", head + "  -> 10.0.0.2:80 Masq 1 0 0\n", 4, "before any service"},
		{"dest not indented", head + "FWM  1 rr\n-> 10.0.0.2:80 Masq 1 0 0\n", 5, "not indented"},
		{"unknown forward", head + "FWM  1 rr\n  -> 10.0.0.2:80 FullNat 1 0 0\n", 5, "unknown forward"},
		{"short dest", head + "FWM  1 rr\n  -> 10.0.0.2:80 Masq 1 0\n", 5, "columns"},
		{"bad weight", head + "FWM  1 rr\n  -> 10.0.0.2:80 Masq x 0 0\n", 5, "bad weight"},
		{"bad mark", head + "FWM  0x100 rr\n", 4, "bad firewall mark"},
		{"no scheduler", head + "FWM  1\n", 4, "no scheduler"},
		{"unknown service", head + "ICMP 10.0.0.1:0 rr\n", 4, "unknown service line"},
		{"rate short", "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\nFWM  1        1        2\n", 2, "want 5 rates"},
		{"thresholds", "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn\n", 1, "unsupported"},
		{"stats short", stats + "FWM  1        1        2\n", 3, "want 5 counters"},
		{"stats bad suffix", stats + "FWM  1        1        2 3 4 5X\n", 3, "bad counter"},
		{"stats overflow", stats + "FWM  1        1        2 3 4 99999999999T\n", 3, "bad counter"},
		{"save undeclared", "-A -f 1 -s rr\n-a -f 2 -r 10.0.0.1:0 -m -w 1\n", 2, "no -A line declared"},
		{"save twice", "-A -f 1 -s rr\n-A -f 1 -s rr\n", 2, "declared twice"},
		{"save unknown opt", "-A -f 1 -s rr --frob\n", 1, "unknown service option"},
		{"save no sched", "-A -t 10.0.0.1:80\n", 1, "without a scheduler"},
		{"save no -r", "-A -f 1 -s rr\n-a -f 1 -m\n", 2, "without -r"},
		{"save bad addr", "-A -t 10.0.0.1 -s rr\n", 1, "bad service address"},
		{"save mixed", "-A -f 1 -s rr\nFWM  1 rr\n", 2, "not an ipvsadm-save line"},
		{"save bad type", "-A -x 1 -s rr\n", 1, "unknown service type"},
		{"list then save", head + "-A -f 1 -s rr\n", 4, "unknown service line"},
		{"second header", head + "FWM  1 rr\n" + head, 5, "second"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Ipvsadm("ns/ipvsadm.txt", strings.NewReader(tt.in))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %+v, %v; want an *Error", v, err)
			}
			if pe.File != "ns/ipvsadm.txt" || pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("got %q (line %d), want line %d and %q", err, pe.Line, tt.line, tt.msg)
			}
		})
	}
}

// TestIpvsadmSwarmVM parses whatever real ipvsadm output the Swarm VM
// recordings hold (fixtures/swarm-vm), when present.
func TestIpvsadmAllFixtures(t *testing.T) {
	for _, path := range fixtures(t, "ipvsadm") {
		v := parseIPVSFile(t, path)
		for _, s := range v.Services {
			if s.FWMark == 0 && !s.Addr.IsValid() {
				t.Errorf("%s: service without mark or address: %+v", path, s)
			}
		}
	}
}
