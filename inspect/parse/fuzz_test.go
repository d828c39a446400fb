package parse

import (
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/topology"
)

// The fuzz targets are seeded with every fixture of their kind (and the
// crashers they found, under testdata/fuzz/). Each checks: no panic; an
// error is an *Error naming the file and a line of the input; a nil error
// means a well-formed result.

func seed(f *testing.F, kind string, extra ...string) {
	for _, path := range fixtures(f, kind) {
		f.Add(readFixture(f, path))
	}
	for _, s := range extra {
		f.Add(s)
	}
}

func checkErr(t *testing.T, err error, data string) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if pe.File != "fuzz.txt" || pe.Line < 1 || pe.Line > strings.Count(data, "\n")+1 {
		t.Fatalf("error %q names file %q line %d (input has %d lines)", err, pe.File, pe.Line, strings.Count(data, "\n")+1)
	}
}

func FuzzIptablesSave(f *testing.F) {
	seed(f, "iptables",
		"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"a\\\"b\" -j ACCEPT\nCOMMIT\n",
		"*nat\n:P - [0:0]\n[1:2] -A P -s ! 1.2.3.4 -m tcp --dport ! 80 -j DNAT --to-destination 1.1.1.1:80\nCOMMIT\n",
		"*filter\n-N X\n-A X -j X -m mark --mark 1\nCOMMIT\n",
		"*raw\n:U - [0:0]\n[0:0] -A U -m comment --comment -j -g U\nCOMMIT\n",
		"*filter\n:B - [0:0]\n-A B -s 1.1.1.1/32 -p tcp -m multiport --dports 22,80 -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset\n"+
			"-A B -s 1.1.1.2/32 -p tcp -m multiport --dports 22,80 -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset\n"+
			"-A B ! -s 1.1.1.3/32 -p tcp -m multiport --dports 22,81 -m conntrack ! --ctstate NEW -j REJECT --reject-with tcp-reset\nCOMMIT\n")
	f.Fuzz(func(t *testing.T, data string) {
		fw, err := IptablesSave("fuzz.txt", strings.NewReader(data))
		packed, perr := iptablesSaveAfter(t, "fuzz.txt", data, 1)
		if (err == nil) != (perr == nil) || err != nil && err.Error() != perr.Error() {
			t.Fatalf("decoded: %v; packed: %v", err, perr)
		}
		if err != nil {
			checkErr(t, err, data)
			return
		}
		checkFirewall(t, fw, data)
		checkFirewall(t, packed, data)
		samePacked(t, fw, packed, true)
	})
}

// FuzzIptablesTable: the per-table reader (iptables -S [-v], iptables -L
// -n -v [-x] [--line-numbers], iptables-save) on every recorded listing.
func FuzzIptablesTable(f *testing.F) {
	for _, path := range fixtures(f, "iptables-table") {
		f.Add(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "iptables-"), ".txt"), readFixture(f, path))
	}
	f.Add("nat", "Chain X (1 references)\nnum pkts bytes target prot opt in out source destination\n1 1K 2M X 0 !f !a+ * !1.2.3.0/255.0.255.0 0.0.0.0/0 [goto] /* */ */ ! state x mark match ! 0x1 to:")
	f.Add("filter", "-P INPUT DROP -c 1 2\n-N X\n-A X -m comment --comment \"-c 1 2\" -c 3 4 -g X\n")
	f.Fuzz(func(t *testing.T, table, data string) {
		if !builtin(table, "OUTPUT") {
			return
		}
		fw, err := IptablesTable("fuzz.txt", table, strings.NewReader(data))
		if err != nil {
			var pe *Error
			if errors.As(err, &pe) && pe.Line == 0 && strings.Contains(err.Error(), "without table") {
				return // iptables-save of other tables: not about one line
			}
			checkErr(t, err, data)
			return
		}
		if len(fw.Tables) != 1 || fw.Tables[0].Name != table {
			t.Fatalf("tables %+v, want only %s", fw.Tables, table)
		}
		checkFirewall(t, fw, data)
		if !strings.HasPrefix(strings.TrimLeft(data, " \t\r\n"), "Chain ") {
			return // -S and iptables-save keep each rule's text as written
		}
		for _, c := range fw.Tables[0].Chains {
			for _, r := range c.Rules {
				if r.Text != r.Render() {
					t.Fatalf("text %q is not its render %q", r.Text, r.Render())
				}
			}
		}
	})
}

func checkFirewall(t *testing.T, fw *topology.Firewall, data string) {
	t.Helper()
	var rp ruleParser
	rp.init()
	nlines := strings.Count(data, "\n") + 1
	tables := map[string]bool{}
	for _, tb := range fw.Tables {
		if tb.Name == "" || tables[tb.Name] {
			t.Fatalf("table %q empty or repeated", tb.Name)
		}
		tables[tb.Name] = true
		chains := map[string]bool{}
		for _, c := range tb.Chains {
			if c.Name == "" || chains[c.Name] || c.Policy == "" {
				t.Fatalf("table %s: chain %+v empty, repeated or without policy", tb.Name, c)
			}
			chains[c.Name] = true
		}
		for _, c := range tb.Chains {
			for _, r := range c.All() {
				if r.Chain != c.Name || !chains[r.Chain] {
					t.Fatalf("rule %q in chain %s of table %s", r.Text, c.Name, tb.Name)
				}
				if r.Line < 1 || r.Line > nlines || r.Text == "" || !strings.HasPrefix(r.Text, "-A") {
					t.Fatalf("rule %+v: bad line or text", r)
				}
				checkOwnText(t, &rp, r)
				checkRoundTrip(t, &rp, r)
			}
		}
	}
	for _, u := range fw.Unparsed {
		if u.File != "fuzz.txt" || u.Line < 1 || u.Line > nlines || u.Text == "" || u.Reason == "" {
			t.Fatalf("unparsed %+v", u)
		}
	}
}

// checkOwnText: a rule is what its own text parses to alone (rules share
// equal parts with the rules before them: never parts they do not have).
// Listings (iptables -L) give texts that are no iptables-save lines: those
// are left out.
func checkOwnText(t *testing.T, rp *ruleParser, r *topology.Rule) {
	t.Helper()
	alone, _ := rp.parse(r.Text)
	if alone == nil || alone.Compile() != nil || r.Undecidable != "" {
		return
	}
	if !sameRule(r, alone) {
		t.Fatalf("rule %q differs from its text parsed alone", r.Text)
	}
}

// checkRoundTrip: the rule's Render parses back to the same rule. Skipped
// for rules whose arguments topology's Render cannot print faithfully
// (an argument that looks like a flag, "!" or "--x": Render does not quote
// it; reported to the model's owner).
func checkRoundTrip(t *testing.T, rp *ruleParser, r *topology.Rule) {
	t.Helper()
	for _, opts := range optionLists(r) {
		for _, o := range opts {
			for _, a := range o.Args {
				if isStop(token{s: a}) && (!stringOpt(o.Name) || a == "!") {
					return
				}
			}
		}
	}
	text := r.Render()
	r2, why := rp.parse(text)
	if r2 == nil {
		t.Fatalf("render %q of %q does not parse: %s", text, r.Text, why)
	}
	// (an undecidable rule's text lacks what could not be read: a DNAT
	// without its range does not compile)
	if err := r2.Compile(); err != nil && r.Undecidable == "" {
		t.Fatalf("render %q of %q does not compile: %v", text, r.Text, err)
	}
	if !sameRule(r, r2) {
		ign := cmpopts.IgnoreFields(topology.Rule{}, "Text", "Line", "HasCounters", "Packets", "Bytes")
		t.Fatalf("render %q of %q parses differently (-first +second):\n%s", text, r.Text, cmp.Diff(r, r2, ign))
	}
	if r2.Render() != text {
		t.Fatalf("render not stable: %q then %q", text, r2.Render())
	}
}

// sameRule compares what Render prints (cmp.Diff is too slow per exec).
func sameRule(a, b *topology.Rule) bool {
	negEq := func(x, y *topology.Negatable) bool {
		return (x == nil) == (y == nil) && (x == nil || *x == *y)
	}
	optsEq := func(x, y []topology.Option) bool {
		return slices.EqualFunc(x, y, func(o, p topology.Option) bool {
			return o.Name == p.Name && o.Neg == p.Neg && slices.Equal(o.Args, p.Args)
		})
	}
	return a.Chain == b.Chain && a.Target == b.Target && a.Goto == b.Goto &&
		negEq(a.Src, b.Src) && negEq(a.Dst, b.Dst) && negEq(a.InIface, b.InIface) &&
		negEq(a.OutIface, b.OutIface) && negEq(a.Proto, b.Proto) && negEq(a.Fragment, b.Fragment) &&
		optsEq(a.TargetOpts, b.TargetOpts) &&
		slices.EqualFunc(a.Matches, b.Matches, func(m, n topology.Match) bool { return m.Name == n.Name && optsEq(m.Opts, n.Opts) })
}

func optionLists(r *topology.Rule) [][]topology.Option {
	out := [][]topology.Option{r.TargetOpts}
	for _, m := range r.Matches {
		out = append(out, m.Opts)
	}
	return out
}

func FuzzIpvsadm(f *testing.F) {
	seed(f, "ipvsadm",
		"-A -f 256 -6 -s rr\n-a -f 256 -6 -r [::1]:0 -m -w 1\n",
		"Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\nFWM  1 1K 2M 3G 4T 5\n  -> 1.2.3.4:0 1 2 3 4 5\n")
	f.Fuzz(func(t *testing.T, data string) {
		v, err := Ipvsadm("fuzz.txt", strings.NewReader(data))
		if err != nil {
			checkErr(t, err, data)
			return
		}
		if !v.Available || v.Services == nil {
			t.Fatalf("%+v", v)
		}
		for _, s := range v.Services {
			if (s.FWMark != 0) == s.Addr.IsValid() || s.Impl != "ipvs" || s.Dests == nil {
				t.Fatalf("service %+v", s)
			}
			if s.FWMark == 0 && s.Proto != "tcp" && s.Proto != "udp" && s.Proto != "sctp" {
				t.Fatalf("service proto %q", s.Proto)
			}
			if s.Port < 0 || s.Port > 65535 || s.Persistent < 0 {
				t.Fatalf("service %+v", s)
			}
			for _, d := range s.Dests {
				switch d.Forward {
				case "masq", "route", "tunnel", "local":
				case "":
					if d.Stats == nil && !d.WeightUnknown { // --rate: neither
						t.Fatalf("dest without forward method nor stats: %+v", d)
					}
				default:
					t.Fatalf("dest forward %q", d.Forward)
				}
				if !d.Addr.IsValid() || d.Port < 0 || d.Port > 65535 || d.ActiveConns < 0 || d.InactConns < 0 {
					t.Fatalf("dest %+v", d)
				}
			}
		}
	})
}

func FuzzIPAddr(f *testing.F) {
	seed(f, "ipaddr",
		"1: a@if3: <UP> mtu 1\n    link/ether x link-netns n\n    inet 1.2.3.4 peer 5.6.7.8/8\n",
		"1: a@b: <UP> mtu 1\n    link/ether x promiscuity 0\n    veth\n2: b@a: <> mtu 2\n")
	f.Fuzz(func(t *testing.T, data string) {
		links, err := IPAddr("fuzz.txt", strings.NewReader(data))
		if err != nil {
			checkErr(t, err, data)
			return
		}
		idx, names := map[int]bool{}, map[string]bool{}
		for _, l := range links {
			if l.Index <= 0 || idx[l.Index] || l.Name == "" || names[l.Name] || l.MTU <= 0 {
				t.Fatalf("link %+v: bad or repeated index/name, or no mtu", l)
			}
			idx[l.Index], names[l.Name] = true, true
			for _, a := range l.Addrs {
				if !a.IsValid() {
					t.Fatalf("link %s: invalid address %v", l.Name, a)
				}
			}
			// A peer on a veth, or on a link of unknown kind (plain ip
			// addr's NAME@ifN, left for topology to tell).
			if l.Peer != nil && (l.Kind != "veth" && l.Kind != "" || l.Peer.NetnsID < NetnsIDNamed || (l.Peer.NetnsID == NetnsIDNamed) != (l.Peer.Netns != "")) {
				t.Fatalf("link %s kind %q peer %+v", l.Name, l.Kind, l.Peer)
			}
			if l.VXLAN != nil && l.Kind != "vxlan" {
				t.Fatalf("link %s kind %q has VXLAN info", l.Name, l.Kind)
			}
		}
	})
}

// checkUnparsed: every line not understood names the file and a line of
// the input, with its text and a reason; with the entries, no more than
// one per non-blank line.
func checkUnparsed(t *testing.T, bad []topology.Unparsed, entries int, data string) {
	t.Helper()
	n, ls := 0, newLines("fuzz.txt", strings.NewReader(data))
	for {
		l, ok := ls.next()
		if !ok {
			break
		}
		if len(fields(nil, l)) > 0 {
			n++
		}
	}
	for _, u := range bad {
		if u.File != "fuzz.txt" || u.Line < 1 || u.Line > ls.n || u.Text == "" || u.Reason == "" {
			t.Fatalf("unparsed %+v (input has %d lines)", u, ls.n)
		}
	}
	if entries+len(bad) > n {
		t.Fatalf("%d entries and %d lines not understood from %d lines", entries, len(bad), n)
	}
}

// fuzzLines runs a line-by-line parser on data and hands a result without
// error to check.
func fuzzLines[T any](t *testing.T, data string, p lineParser[T], size func(T) int, check func(T)) {
	v, bad, err := p("fuzz.txt", strings.NewReader(data))
	if err != nil {
		checkErr(t, err, data)
		return
	}
	checkUnparsed(t, bad, size(v), data)
	check(v)
}

func validAddr(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.String() == s
}

// validIP: an address as the model holds it: valid, no zone (a
// textual one would not read back).
func validIP(a netip.Addr) bool { return a.IsValid() && validAddr(a.String()) }

// validLLAddr: a MAC (6, 8 or 20 octets, as net.ParseMAC reads them) or the
// 4 octets of a tunnel device's IPv4 link address.
func validLLAddr(s string) bool {
	if _, err := net.ParseMAC(s); err == nil {
		return true
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	return err == nil && len(b) == 4 && len(s) == 11 && net.HardwareAddr(b).String() == s
}

func validState(s string) bool {
	if s == "none" {
		return true
	}
	for _, p := range strings.Split(s, ",") {
		if !slices.Contains(topology.NeighStates[:], p) {
			return false
		}
	}
	return s != ""
}

func FuzzIPRoute(f *testing.F) {
	seed(f, "iproute", "10.0.0.0/8 proto static\n\tnexthop via 1.2.3.4 dev e\n\tnexthop dev f\n", "2 1.2.3.4 table 4294967295 via inet6 ::1 src ::\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, IPRoute, func(v []topology.Route) int { return len(v) }, func(rs []topology.Route) {
			for _, r := range rs {
				if p := r.Dst; !p.IsValid() || p != p.Masked() || (p.Bits() == 0 && p != topology.DefaultRoute) {
					t.Fatalf("route %+v: bad destination", r)
				}
				if (r.Gateway.IsValid() && !validIP(r.Gateway)) || (r.Src.IsValid() && !validIP(r.Src)) || r.Table < 0 || r.Table == 254 {
					t.Fatalf("route %+v", r)
				}
			}
		})
	})
}

func FuzzIPNeigh(f *testing.F) {
	seed(f, "ipneigh", "fe80::1 dev e lladdr 00:11:22:33:44:55:66:77 router NONE FAILED\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, IPNeigh, func(v []topology.Neigh) int { return len(v) }, func(ns []topology.Neigh) {
			for _, n := range ns {
				if !validIP(n.IP) || (n.MAC.IsValid() && !validLLAddr(n.MAC.String())) || !validState(n.State) {
					t.Fatalf("neighbour %+v", n)
				}
			}
		})
	})
}

func FuzzBridgeFDB(f *testing.F) {
	seed(f, "fdb", "00:00:00:00:00:00 dev v dst ::1 state=0x0\n", "aa:bb:cc:dd:ee:ff dev\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, BridgeFDB, func(v []topology.FDB) int { return len(v) }, func(es []topology.FDB) {
			for _, e := range es {
				if _, err := net.ParseMAC(e.MAC.String()); err != nil || len(e.MAC.HardwareAddr()) != 6 || e.Dev == "" || (e.Dst.IsValid() && !validIP(e.Dst)) || !validState(e.State) {
					t.Fatalf("fdb %+v", e)
				}
			}
		})
	})
}

func FuzzSysctl(f *testing.F) {
	seed(f, "sysctl", "a/b.c = \t1\t2 \n=\nx =\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, Sysctl, func(v topology.Sysctls) int { return len(v) }, func(s topology.Sysctls) {
			for k, v := range s {
				if k == "" || strings.ContainsAny(k, " \t/") || v != trimSpace(v) {
					t.Fatalf("sysctl %q = %q", k, v)
				}
			}
		})
	})
}

func FuzzSS(f *testing.F) {
	seed(f, "ss", "UNCONN 0 0 [::ffff:1.2.3.4]%x:65535 *:*\nLISTEN 0 0 *%lo:1 *:*\n",
		"Proto Recv-Q Send-Q Local Address Foreign Address State\ntcp6 0 0 fe80::1%d0:83 :::* LISTEN 1/x\nudp 0 0 0.0.0.0:53 0.0.0.0:* -\nActive UNIX domain sockets\nunix 2 [ ] DGRAM 1 /x\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, SS, func(v []topology.Socket) int { return len(v) }, func(ss []topology.Socket) {
			for _, s := range ss {
				if (s.Proto != "tcp" && s.Proto != "udp") || !s.Addr.IsValid() || s.Addr.Zone() != "" || s.Addr.Is4In6() || s.Port < 0 || s.Port > 65535 {
					t.Fatalf("socket %+v", s)
				}
			}
		})
	})
}

func FuzzConntrack(f *testing.F) {
	seed(f, "conntrack", "ipv6 10 tcp 6 1 LISTEN src=::1 dst=::2 src=::2 dst=::1 zone=1\n", "ipv4 2\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, Conntrack, func(v []topology.Conntrack) int { return len(v) }, func(cs []topology.Conntrack) {
			for _, c := range cs {
				for _, a := range []netip.Addr{c.Orig.Src, c.Orig.Dst, c.Reply.Src, c.Reply.Dst} {
					if !a.IsValid() || a.Is4In6() {
						t.Fatalf("entry %+v: address %v", c, a)
					}
				}
				if c.Proto == "" || (c.State != "" && c.Proto != "tcp") {
					t.Fatalf("entry %+v", c)
				}
			}
		})
	})
}

func FuzzIpvsadmTimeout(f *testing.F) {
	seed(f, "ipvstimeout", "Timeout (tcp tcpfin udp): 1 2\n", "\n\n")
	f.Fuzz(func(t *testing.T, data string) {
		to, err := IpvsadmTimeout("fuzz.txt", strings.NewReader(data))
		var pe *Error
		switch {
		case errors.As(err, &pe) && pe.Line == 0 && pe.File == "fuzz.txt":
			if len(fields(nil, strings.ReplaceAll(strings.ReplaceAll(data, "\r", ""), "\n", ""))) > 0 {
				t.Fatalf("%v for %q, which has a line to name", err, data)
			}
		case err != nil:
			checkErr(t, err, data)
		case to == nil || to.TCP < 0 || to.TCPFin < 0 || to.UDP < 0:
			t.Fatalf("timeouts %+v", to)
		}
	})
}

func FuzzXfrmState(f *testing.F) {
	seed(f, "xfrmstate", stateKeys, stateStats, string(RedactXfrmKeys([]byte(stateKeys))),
		"src 1.1.1.1 dst ::1\n\tproto 9 reqid 1 mode 7\n\tmark 1/2\n\tsel src 1.2.3.4/40 dst ::/0 key 70000 dev x\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, XfrmState, func(v []topology.XfrmState) int { return len(v) }, func(ss []topology.XfrmState) {
			for _, s := range ss {
				if !s.Src.IsValid() || !s.Dst.IsValid() {
					t.Fatalf("state %+v: no address", s)
				}
				if s.Sel != nil && (!s.Sel.Src.IsValid() || !s.Sel.Dst.IsValid()) {
					t.Fatalf("state %+v: bad selector", s)
				}
				for _, a := range s.Algos {
					if a.Name == "" || strings.HasPrefix(a.Name, "0x") {
						t.Fatalf("state %+v: algorithm %+v", s, a)
					}
				}
			}
		})
	})
}

func FuzzXfrmPolicy(f *testing.F) {
	seed(f, "xfrmpolicy", "src ::/0 dst 0.0.0.0/0 proto 200 type 1 code 2\n\tsocket fwd action 9 priority 1 flag 80 (0x80)\n\ttmpl src :: dst ::\n\t\tproto ah reqid 0 mode beet\n\t\tlevel 2\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, XfrmPolicy, func(v []topology.XfrmPolicy) int { return len(v) }, func(ps []topology.XfrmPolicy) {
			for _, p := range ps {
				if !p.Sel.Src.IsValid() || !p.Sel.Dst.IsValid() {
					t.Fatalf("policy %+v: bad selector", p)
				}
				for _, tm := range p.Tmpls {
					if !tm.Src.IsValid() || !tm.Dst.IsValid() {
						t.Fatalf("policy %+v: template %+v", p, tm)
					}
				}
			}
		})
	})
}

// FuzzRedactXfrmKeys: whatever the input, no 0x word is left after an
// algorithm's name, and redacting again changes nothing.
func FuzzRedactXfrmKeys(f *testing.F) {
	seed(f, "xfrmstate", stateKeys, stateStats, "\tenc x 0x1 0X2 (3 bits)\n\tcomp y\n")
	f.Fuzz(func(t *testing.T, data string) {
		red := RedactXfrmKeys([]byte(data))
		if again := RedactXfrmKeys(red); string(again) != string(red) {
			t.Fatalf("not idempotent:\n%q\n%q", red, again)
		}
		for line := range strings.SplitSeq(string(red), "\n") {
			f := fields(nil, strings.TrimRight(line, "\r"))
			if len(f) < 2 || !isAlgoKind(f[0]) || line[0] != ' ' && line[0] != '\t' {
				continue
			}
			for _, w := range f[1:] {
				if strings.HasPrefix(w, "0x") || strings.HasPrefix(w, "0X") {
					t.Fatalf("key left in %q", line)
				}
			}
		}
	})
}

func FuzzSNMP(f *testing.F) {
	seed(f, "snmp", "Ip: A B\nIp: 1 -2\nX 3 0.0\n#kernel\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, SNMP, func(v map[string]int64) int { return 0 }, func(m map[string]int64) {
			for k := range m {
				if !isCounterName(k) {
					t.Fatalf("counter name %q", k)
				}
			}
		})
	})
}

func FuzzConntrackStat(f *testing.F) {
	seed(f, "ctstat", "entries a\nff 1\n", "cpu=0 a=1\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, ConntrackStat, func(v map[string]uint64) int { return 0 }, func(m map[string]uint64) {
			for k := range m {
				if !isCounterName(k) {
					t.Fatalf("counter name %q", k)
				}
			}
		})
	})
}

func FuzzIPLinkStats(f *testing.F) {
	seed(f, "linkstats", "1: a@b: <UP> mtu 1\n    RX: bytes packets\n    1 2\n    vf 0 x\n    RX: bytes packets mcast bcast\n    1 2 3 4\n")
	f.Fuzz(func(t *testing.T, data string) {
		fuzzLines(t, data, IPLinkStats, func(v map[string]topology.LinkCounters) int { return len(v) }, func(m map[string]topology.LinkCounters) {
			for name, lc := range m {
				if name == "" || strings.ContainsAny(name, " \t") {
					t.Fatalf("link name %q", name)
				}
				for k := range lc {
					if !isCounterName(k) {
						t.Fatalf("link %s: counter %q", name, k)
					}
				}
			}
		})
	})
}
