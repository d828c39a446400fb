package parse

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshtrace/meshtrace/topology"
)

// wrap puts rule lines into a filter table declaring the chains they use.
func wrap(rules ...string) string {
	return "*filter\n:INPUT ACCEPT [0:0]\n:X - [0:0]\n" + strings.Join(rules, "\n") + "\nCOMMIT\n"
}

func neg(v string) *topology.Negatable { return &topology.Negatable{Neg: true, Value: v} }
func val(v string) *topology.Negatable { return &topology.Negatable{Value: v} }

// qopt is an option whose argument iptables-save printed quoted.
func qopt(name string, args ...string) topology.Option {
	o := opt(name, args...)
	o.Quoted = true
	return o
}

func opt(name string, args ...string) topology.Option {
	return topology.Option{Name: name, Args: args}
}
func nopt(name string, args ...string) topology.Option {
	return topology.Option{Name: name, Neg: true, Args: args}
}

// TestRuleShapes: one rule per case, the expected structure written from
// the rule text by hand.
func TestRuleShapes(t *testing.T) {
	tests := []struct {
		line string
		want topology.Rule
	}{
		{"-A INPUT -j ACCEPT", topology.Rule{Target: "ACCEPT"}},
		{"-A INPUT", topology.Rule{}},
		{"-A INPUT -g X", topology.Rule{Target: "X", Goto: true}},
		{"-A INPUT ! -s 10.0.0.0/8 -d 10.1.0.0/16 ! -i docker_gwbridge -o veth+ ! -p udp ! -f -j DROP", topology.Rule{
			Src: neg("10.0.0.0/8"), Dst: val("10.1.0.0/16"), InIface: neg("docker_gwbridge"),
			OutIface: val("veth+"), Proto: neg("udp"), Fragment: &topology.Negatable{Neg: true}, Target: "DROP"}},
		{"-A INPUT -p tcp -m tcp --sport 1024:65535 --dport 8080 -j DNAT --to-destination 172.18.0.2:8080", topology.Rule{
			Proto:   val("tcp"),
			Matches: []topology.Match{{Name: "tcp", Opts: []topology.Option{opt("sport", "1024:65535"), opt("dport", "8080")}}},
			Target:  "DNAT", TargetOpts: []topology.Option{opt("to-destination", "172.18.0.2:8080")}}},
		{"-A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment \"a \\\"quoted\\\" \\\\ comment\" -j REJECT --reject-with icmp-port-unreachable", topology.Rule{
			Proto: val("tcp"),
			Matches: []topology.Match{
				{Name: "multiport", Opts: []topology.Option{opt("dports", "80,443")}},
				{Name: "comment", Opts: []topology.Option{qopt("comment", `a "quoted" \ comment`)}}},
			Target: "REJECT", TargetOpts: []topology.Option{opt("reject-with", "icmp-port-unreachable")}}},
		{"-A INPUT -m addrtype ! --src-type LOCAL --limit-iface-out -m addrtype --dst-type LOCAL -j X", topology.Rule{
			Matches: []topology.Match{
				{Name: "addrtype", Opts: []topology.Option{nopt("src-type", "LOCAL"), opt("limit-iface-out")}},
				{Name: "addrtype", Opts: []topology.Option{opt("dst-type", "LOCAL")}}},
			Target: "X"}},
		{"-A INPUT -d 10.255.0.0/16 -m ipvs --ipvs --vaddr 10.255.0.4/32 --vport 80 --vdir REPLY --vmethod GATE -j SNAT --to-source 10.255.0.2", topology.Rule{
			Dst: val("10.255.0.0/16"),
			Matches: []topology.Match{{Name: "ipvs", Opts: []topology.Option{opt("ipvs"), opt("vaddr", "10.255.0.4/32"),
				opt("vport", "80"), opt("vdir", "REPLY"), opt("vmethod", "GATE")}}},
			Target: "SNAT", TargetOpts: []topology.Option{opt("to-source", "10.255.0.2")}}},
		{"-A INPUT -m ipvs ! --ipvs -j RETURN", topology.Rule{
			Matches: []topology.Match{{Name: "ipvs", Opts: []topology.Option{nopt("ipvs")}}}, Target: "RETURN"}},
		{"-A INPUT -m mark --mark 0x100/0xffffffff -m state --state RELATED,ESTABLISHED -m conntrack ! --ctstate INVALID --ctorigdst 172.18.0.2 -j MARK --set-mark 0x13d", topology.Rule{
			Matches: []topology.Match{
				{Name: "mark", Opts: []topology.Option{opt("mark", "0x100/0xffffffff")}},
				{Name: "state", Opts: []topology.Option{opt("state", "RELATED,ESTABLISHED")}},
				{Name: "conntrack", Opts: []topology.Option{nopt("ctstate", "INVALID"), opt("ctorigdst", "172.18.0.2")}}},
			Target: "MARK", TargetOpts: []topology.Option{opt("set-mark", "0x13d")}}},
		{"-A INPUT -m statistic --mode nth --every 3 --packet 2 -j DNAT --to-destination 10.0.0.5 --random", topology.Rule{
			Matches: []topology.Match{{Name: "statistic", Opts: []topology.Option{opt("mode", "nth"), opt("every", "3"), opt("packet", "2")}}},
			Target:  "DNAT", TargetOpts: []topology.Option{opt("to-destination", "10.0.0.5"), opt("random")}}},
		{"-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j LOG --log-prefix \"drop: \" --log-level 4", topology.Rule{
			Proto:   val("tcp"),
			Matches: []topology.Match{{Name: "tcp", Opts: []topology.Option{opt("tcp-flags", "FIN,SYN,RST,ACK", "SYN")}}},
			Target:  "LOG", TargetOpts: []topology.Option{qopt("log-prefix", "drop: "), opt("log-level", "4")}}},
		{"-A INPUT -j REDIRECT --to-ports 80", topology.Rule{Target: "REDIRECT", TargetOpts: []topology.Option{opt("to-ports", "80")}}},
		{"-A INPUT -m comment --comment \"\" -j MASQUERADE", topology.Rule{
			Matches: []topology.Match{{Name: "comment", Opts: []topology.Option{qopt("comment", "")}}}, Target: "MASQUERADE"}},
		// the old negation styles
		{"-A INPUT -s ! 10.0.0.0/8 -p tcp -m tcp --dport ! 22 -j DROP", topology.Rule{
			Src: neg("10.0.0.0/8"), Proto: val("tcp"),
			Matches: []topology.Match{{Name: "tcp", Opts: []topology.Option{nopt("dport", "22")}}}, Target: "DROP"}},
		// a quoted argument is never a flag
		{"-A INPUT -m string --string \"-j\" --algo bm -j X", topology.Rule{
			Matches: []topology.Match{{Name: "string", Opts: []topology.Option{qopt("string", "-j"), opt("algo", "bm")}}}, Target: "X"}},
		// free text that iptables-save leaves unquoted ([-_0-9A-Za-z] only)
		// is one word even when it looks like a flag
		{"-A INPUT -m comment --comment -j -g X", topology.Rule{
			Matches: []topology.Match{{Name: "comment", Opts: []topology.Option{opt("comment", "-j")}}}, Target: "X", Goto: true}},
		{"-A INPUT -j LOG --log-prefix --x --log-level 4", topology.Rule{
			Target: "LOG", TargetOpts: []topology.Option{opt("log-prefix", "--x"), opt("log-level", "4")}}},
		// header flags after a match (not iptables-save's order, accepted)
		{"-A INPUT -m mark --mark 0x1 -s 1.2.3.4 -j X", topology.Rule{
			Src: val("1.2.3.4"), Matches: []topology.Match{{Name: "mark", Opts: []topology.Option{opt("mark", "0x1")}}}, Target: "X"}},
	}
	ignore := cmpopts.IgnoreFields(topology.Rule{}, "Chain", "Text", "Line")
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			fw, err := IptablesSave("t", strings.NewReader(wrap(tt.line)))
			if err != nil {
				t.Fatal(err)
			}
			if len(fw.Unparsed) > 0 {
				t.Fatalf("unparsed: %+v", fw.Unparsed)
			}
			r := fw.Table("filter").Chain("INPUT").Rules[0]
			if r.Chain != "INPUT" || r.Text != tt.line || r.Line != 4 {
				t.Errorf("chain %q text %q line %d", r.Chain, r.Text, r.Line)
			}
			// the reader types the arguments: the expectation is the same
			// rule compiled
			if err := tt.want.Compile(); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(&tt.want, r, ignore, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
			// Render prints the canonical form: "! --opt" for the old
			// negation style, header flags before the matches.
			normalised := isOldNegation(tt.line) || strings.Contains(tt.line, "0x1 -s")
			if got := r.Render(); !normalised && got != tt.line && got != unquoteSafe(tt.line) {
				t.Errorf("render %q", got)
			}
		})
	}
}

func TestCountersAndChains(t *testing.T) {
	in := "# Generated by iptables-save v1.8.9 (nf_tables) on x\n" +
		"*nat\n:PREROUTING ACCEPT [12:720]\n:DOCKER-INGRESS - [0:0]\n" +
		"[18446744073709551615:5] -A PREROUTING -j DOCKER-INGRESS\n" +
		"  [0:0]   -A DOCKER-INGRESS -j RETURN  \r\n" +
		"COMMIT\n*filter\n:INPUT DROP\n-N MINE\n-A MINE -j ACCEPT\nCOMMIT\n"
	fw, err := IptablesSave("t", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	pre := fw.Table("nat").Chain("PREROUTING")
	if pre.Policy != "ACCEPT" || pre.Packets != 12 || pre.Bytes != 720 {
		t.Errorf("chain %+v", pre)
	}
	r := pre.Rules[0]
	if !r.HasCounters || r.Packets != 18446744073709551615 || r.Bytes != 5 || r.Line != 5 {
		t.Errorf("rule %+v", r)
	}
	r = fw.Table("nat").Chain("DOCKER-INGRESS").Rules[0]
	if r.Text != "-A DOCKER-INGRESS -j RETURN" || r.Line != 6 {
		t.Errorf("text %q line %d", r.Text, r.Line)
	}
	if c := fw.Table("filter").Chain("INPUT"); c.Policy != "DROP" || c.Packets != 0 {
		t.Errorf("chain without counters: %+v", c)
	}
	if c := fw.Table("filter").Chain("MINE"); c == nil || c.Policy != "-" || len(c.Rules) != 1 {
		t.Errorf("-N chain: %+v", c)
	}
	if fw.Backend != "nf_tables" {
		t.Errorf("backend %q", fw.Backend)
	}
}

func TestEmptyInput(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# Warning: iptables-legacy tables present\n"} {
		fw, err := IptablesSave("t", strings.NewReader(in))
		if err != nil || len(fw.Tables) != 0 || fw.Tables == nil {
			t.Errorf("%q: %+v, %v", in, fw, err)
		}
	}
}

// TestStructuralErrors: damage that leaves the structure unknown is an
// *Error naming the file and the line.
func TestStructuralErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"truncated", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n", 3, "no COMMIT"},
		{"truncated mid-rule", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tc", 3, "no COMMIT"},
		{"undeclared chain", "*filter\n:INPUT ACCEPT [0:0]\n-A FORWARD -j ACCEPT\nCOMMIT\n", 3, "never declared"},
		{"chain of another table", "*nat\n:DOCKER - [0:0]\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n-A DOCKER -j X\nCOMMIT\n", 6, "never declared"},
		{"rule outside a table", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n-A INPUT -j ACCEPT\n", 4, "outside a table"},
		{"counted rule outside a table", "*filter\nCOMMIT\n[1:2] -A INPUT -j ACCEPT\n", 3, "outside a table"},
		{"chain outside a table", "*filter\nCOMMIT\n:INPUT ACCEPT [0:0]\n", 3, "outside a table"},
		{"not iptables-save: ip addr", "1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue\n", 1, "not iptables-save"},
		{"not iptables-save: rules only", "# x\n-A INPUT -j ACCEPT\n", 2, "not iptables-save"},
		{"not iptables-save: ipvsadm", "IP Virtual Server version 1.2.1 (size=4096)\n", 1, "not iptables-save"},
		{"bad rule counter", "*filter\n:INPUT ACCEPT [0:0]\n[x:y] -A INPUT -j ACCEPT\nCOMMIT\n", 3, "bad counters"},
		{"unclosed rule counter", "*filter\n:INPUT ACCEPT [0:0]\n[1:2 -A INPUT\nCOMMIT\n", 3, "bad counters"},
		{"negative counter", "*filter\n:INPUT ACCEPT [0:0]\n[-1:2] -A INPUT\nCOMMIT\n", 3, "bad counters"},
		{"bad chain counter", "*filter\n:INPUT ACCEPT [1:b]\nCOMMIT\n", 2, "bad counters"},
		{"bad chain line", "*filter\n:INPUT\nCOMMIT\n", 2, "bad chain line"},
		{"chain twice", "*filter\n:X - [0:0]\n:X - [0:0]\nCOMMIT\n", 3, "declared twice"},
		{"table twice", "*filter\nCOMMIT\n*filter\nCOMMIT\n", 3, "appears twice"},
		{"table in a table", "*filter\n*nat\nCOMMIT\n", 2, "before table filter"},
		{"COMMIT outside", "*filter\nCOMMIT\nCOMMIT\n", 3, "COMMIT outside"},
		{"bad table line", "*filter nat\nCOMMIT\n", 1, "bad table line"},
		{"garbage after commit", "*filter\nCOMMIT\nhello\n", 3, "outside a table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw, err := IptablesSave("dir/iptables-save.txt", strings.NewReader(tt.in))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %+v, %v; want an *Error", fw, err)
			}
			if pe.File != "dir/iptables-save.txt" || pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("got %q (line %d), want line %d and %q", err, pe.Line, tt.line, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "dir/iptables-save.txt:") {
				t.Errorf("message %q does not start with the file", err)
			}
		})
	}
}

// TestUnparsedKept: a rule line that is not understood is reported with
// its file, line, verbatim text and reason; the rules around it are kept.
func TestUnparsedKept(t *testing.T) {
	bad := []struct{ line, reason string }{
		{`-A INPUT -m comment --comment "unbalanced -j ACCEPT`, "unterminated quote"},
		{`[3:4] -A INPUT -m comment --comment "x\" -j ACCEPT`, "unterminated quote"},
		{"-A INPUT -w 5 -j ACCEPT", "unexpected"},
		{"-A INPUT --dport 80 -j ACCEPT", "before any -m or -j"},
		{"-A INPUT -p tcp !", "! at the end"},
		{"-A INPUT ! ! -p tcp", "two !"},
		{"-A INPUT ! -m tcp", "! before -m"},
		{"-A INPUT -s 1.2.3.4 -s 5.6.7.8", "duplicate -s"},
		{"-A INPUT -j", "without a name"},
		{"-A INPUT -m -j X", "without a name"},
		{"-A INPUT -j ACCEPT -j DROP", "two targets"},
		{"-A INPUT -p", "without a value"},
		{`-A INPUT -i "eth 0"`, "quoted value for -i"},
		{"-A INPUT -f -f", "duplicate -f"},
		{`-A INPUT "quoted" -j X`, "unexpected argument"},
		{"-A", "not a rule"},
		{"-A -j X", "without a chain"},
		{"-I INPUT 1 -j ACCEPT", "-I is not part"},
		{"-D INPUT -j ACCEPT", "-D is not part"},
		{"-N", "not a rule"},
		{"-N a b", "bad -N"},
		{"--append INPUT -j X", "not a rule"},
		{"hello world", "not an iptables-save line"},
	}
	var ls []string
	for _, b := range bad {
		ls = append(ls, "-A INPUT -j ACCEPT", b.line)
	}
	ls = append(ls, "-A INPUT -j ACCEPT")
	fw, err := IptablesSave("f.txt", strings.NewReader(wrap(ls...)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fw.Table("filter").Chain("INPUT").Rules); n != len(bad)+1 {
		t.Errorf("%d good rules kept, want %d", n, len(bad)+1)
	}
	if len(fw.Unparsed) != len(bad) {
		t.Fatalf("%d unparsed, want %d: %+v", len(fw.Unparsed), len(bad), fw.Unparsed)
	}
	for i, b := range bad {
		u := fw.Unparsed[i]
		if u.File != "f.txt" || u.Line != 3+2*(i+1) || u.Text != b.line || !strings.Contains(u.Reason, b.reason) {
			t.Errorf("unparsed %d: %+v, want line %d text %q reason %q", i, u, 3+2*(i+1), b.line, b.reason)
		}
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := IptablesSave("f", errReader{boom})
	var pe *Error
	if !errors.As(err, &pe) || !errors.Is(err, boom) || pe.File != "f" {
		t.Errorf("got %v", err)
	}
	if _, err := Ipvsadm("f", errReader{boom}); !errors.Is(err, boom) {
		t.Errorf("ipvsadm: %v", err)
	}
	if _, err := IPAddr("f", errReader{boom}); !errors.Is(err, boom) {
		t.Errorf("ip addr: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestBadArgumentsNameFileAndLine: a NAT, MARK or port argument that does
// not parse fails the read with an error naming file and line, instead of
// being wrapped (70000 as 4464), replaced (another address for "foo"),
// kept (--to-ports abc keeping the port) or defaulted (mark zzz as 0).
func TestBadArgumentsNameFileAndLine(t *testing.T) {
	for _, c := range []struct{ rule, want string }{
		{"-A INPUT -p tcp -j DNAT --to-destination 172.18.0.2:70000", `t:4: chain INPUT: --to-destination "172.18.0.2:70000": port 70000 out of range (0-65535)`},
		{"-A INPUT -p tcp -j DNAT --to-destination foo", `t:4: chain INPUT: --to-destination "foo": bad address "foo"`},
		{"-A INPUT -p tcp -j REDIRECT --to-ports abc", `t:4: chain INPUT: --to-ports "abc": bad port "abc"`},
		{"-A INPUT -j MARK --set-xmark zzz", `t:4: chain INPUT: --set-xmark "zzz": bad number "zzz"`},
		{"-A INPUT -m mark --mark 0x100/zz -j ACCEPT", `t:4: chain INPUT: --mark "0x100/zz": bad number "zz"`},
		{"-A INPUT -p udp -m udp --dport 65536 -j ACCEPT", `t:4: chain INPUT: --dport "65536": port 65536 out of range (0-65535)`},
		{"-A INPUT -p tcp -m multiport --dports 80,x -j ACCEPT", `t:4: chain INPUT: --dports "80,x": bad port "x"`},
		{"-A INPUT -s 10.0.0.300 -j ACCEPT", `t:4: chain INPUT: -s "10.0.0.300": bad address or prefix`},
	} {
		_, err := IptablesSave("t", strings.NewReader(wrap(c.rule)))
		var pe *Error
		if !errors.As(err, &pe) || pe.File != "t" || pe.Line != 4 || err.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.rule, err, c.want)
		}
	}
}

// TestBadArgumentsEveryOne: a file with several rules iptables would
// refuse names every one of them, and the lines not understood beside
// them, in one error (the first is the *Error errors.As finds).
func TestBadArgumentsEveryOne(t *testing.T) {
	rules := map[string]string{
		"-A X -p tcp -m tcp --dport 99999 -j ACCEPT":                  `--dport "99999"`,
		"-A X -p tcp -m tcp --dport -5 -j ACCEPT":                     `--dport "-5"`,
		"-A X -p tcp -m tcp --sport 9:1 -j ACCEPT":                    `--sport "9:1"`,
		"-A X -p tcp -m multiport --dports 1,70000 -j ACCEPT":         `--dports "1,70000"`,
		"-A X -p tcp -j DNAT --to-destination 999.1.2.3:80":           `--to-destination "999.1.2.3:80"`,
		"-A X -p tcp -j DNAT --to-destination 10.0.0.1:notaport":      `--to-destination "10.0.0.1:notaport"`,
		"-A X -p tcp -j DNAT --to-destination":                        `--to-destination wants one argument`,
		"-A X -p tcp -j DNAT":                                         `DNAT without --to-destination`,
		"-A X -j REDIRECT --to-ports 70000":                           `--to-ports "70000"`,
		"-A X -m statistic --mode nth --every 0 --packet 0 -j ACCEPT": `--every "0"`,
		"-A X -m statistic --mode nth --every 2 --packet 2 -j ACCEPT": `--packet "2"`,
		"-A X -m statistic --mode random --probability 1.5 -j ACCEPT": `--probability "1.5"`,
		"-A X -s 10.0.0.0/99 -j ACCEPT":                               `-s "10.0.0.0/99"`,
		"-A X -d 300.0.0.1/32 -j ACCEPT":                              `-d "300.0.0.1/32"`,
		"-A X -j MARK --set-xmark 0xffffffffff/0x1":                   `--set-xmark "0xffffffffff/0x1"`,
		"-A X -m mark --mark banana -j ACCEPT":                        `--mark "banana"`,
		"-A X -i averyveryverylongname0 -j ACCEPT":                    `-i "averyveryverylongname0"`,
		"-A X -p 300 -j ACCEPT":                                       `-p "300"`,
	}
	var lines []string
	for r := range rules {
		lines = append(lines, r)
	}
	sort.Strings(lines)
	in := "*nat\n:X - [0:0]\n-A X -j RETURN\n" + strings.Join(lines, "\n") + "\n-A X -m comment --comment \"unterminated\n-A X -j\nCOMMIT\n"
	_, err := IptablesSave("f.txt", strings.NewReader(in))
	var l ErrorList
	var first *Error
	if !errors.As(err, &l) || !errors.As(err, &first) || first.Line != 4 {
		t.Fatalf("got %v", err)
	}
	if len(l) != len(rules)+2 {
		t.Errorf("%d errors, want %d:\n%v", len(l), len(rules)+2, err)
	}
	for i, e := range l {
		n := 4 + i
		if e.File != "f.txt" || e.Line != n {
			t.Errorf("error %d names %s:%d", i, e.File, e.Line)
			continue
		}
		if n-4 < len(lines) && !strings.Contains(e.Msg, rules[lines[n-4]]) {
			t.Errorf("line %d (%s): %s, want %q", n, lines[n-4], e.Msg, rules[lines[n-4]])
		}
	}
	if !strings.Contains(l[len(l)-2].Msg, "not understood (unterminated quote)") || !strings.Contains(l[len(l)-1].Msg, "-j without a name") {
		t.Errorf("lines not understood: %v", l[len(l)-2:])
	}
	// what iptables takes stays
	for _, rule := range []string{
		"-A X -p tcp -m tcp --dport 0:65535 -j ACCEPT",
		"-A X -p udp -m multiport --dports 53,5353:5360 -j ACCEPT",
		"-A X -d 10.0.0.0/255.0.255.0 -j ACCEPT",
		"-A X -s fe80::/10 -j ACCEPT",
		"-A X -p tcp -j DNAT --to-destination 10.0.0.1-10.0.0.9:80-90",
		"-A X -p tcp -j DNAT --to-destination [fe80::1]:80",
		"-A X -j REDIRECT --to-ports 80-81",
		"-A X -m statistic --mode nth --every 3 --packet 2 -j ACCEPT",
		"-A X -m statistic --mode random --probability 0.50000000000 -j ACCEPT",
		"-A X -i veth+ -o docker_gwbridge -p 47 -j ACCEPT",
	} {
		if _, err := IptablesSave("f.txt", strings.NewReader("*nat\n:X - [0:0]\n"+rule+"\nCOMMIT\n")); err != nil {
			t.Errorf("%s refused: %v", rule, err)
		}
	}
}

// TestSharedRuleParts: rules that repeat a header value, a match list or
// a target's options (a block-list's shape) share one read-only copy of
// it, compiled once; parts that differ, or that are not contiguous in the
// line, stay each rule's own.
func TestSharedRuleParts(t *testing.T) {
	data := "*filter\n:INPUT ACCEPT [0:0]\n:BL - [0:0]\n" +
		"-A BL -s 11.0.0.1/32 -p tcp -m multiport --dports 22,80 -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset\n" +
		"-A BL -s 11.0.0.2/32 -p tcp -m multiport --dports 22,80 -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset\n" +
		"-A BL -s 11.0.0.3/32 -p tcp -m multiport --dports 22,81 -m conntrack --ctstate NEW -j REJECT --reject-with icmp-port-unreachable\n" +
		"-A BL -m multiport --dports 22,80 -p tcp -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset\n" +
		"COMMIT\n"
	fw, err := IptablesSave("save.txt", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	rs := fw.Tables[0].Chains[1].Rules
	if len(rs) != 4 {
		t.Fatalf("%d rules, want 4", len(rs))
	}
	same := func(a, b []topology.Match) bool { return &a[0] == &b[0] }
	if !same(rs[0].Matches, rs[1].Matches) || &rs[0].TargetOpts[0] != &rs[1].TargetOpts[0] || rs[0].Proto != rs[1].Proto {
		t.Errorf("rules 1 and 2 do not share their equal parts")
	}
	if rs[0].Src == rs[1].Src || rs[0].Src.Value != "11.0.0.1/32" || rs[1].Src.Net.String() != "11.0.0.2/32" {
		t.Errorf("sources %+v %+v", rs[0].Src, rs[1].Src)
	}
	if same(rs[0].Matches, rs[2].Matches) || &rs[0].TargetOpts[0] == &rs[2].TargetOpts[0] {
		t.Errorf("rule 3 shares parts that differ")
	}
	if same(rs[0].Matches, rs[3].Matches) {
		t.Errorf("rule 4 (-p between its matches) shares rule 1's matches")
	}
	for i, r := range rs {
		want := []topology.PortRange{{Lo: 22, Hi: 22}, {Lo: 80, Hi: 80}}
		if i == 2 {
			want[1] = topology.PortRange{Lo: 81, Hi: 81}
		}
		if got := r.Matches[0].Opts[0].Ports; !slices.Equal(got, want) {
			t.Errorf("rule %d: ports %v, want %v", i+1, got, want)
		}
		if i < 3 && r.Render() != r.Text { // (Render puts -p first)
			t.Errorf("rule %d renders %q, text %q", i+1, r.Render(), r.Text)
		}
	}
}
