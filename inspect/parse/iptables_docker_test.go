package parse

import (
	"os"
	"slices"
	"testing"

	"github.com/meshtrace/meshtrace/topology"
)

func parseFixture(t *testing.T, path string) *topology.Firewall {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fw, err := IptablesSave(path, f)
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

func ruleAt(t *testing.T, fw *topology.Firewall, table, chain string, i int) *topology.Rule {
	t.Helper()
	c := fw.Table(table).Chain(chain)
	if c == nil || i >= len(c.Rules) {
		t.Fatalf("no rule %d in %s/%s", i, table, chain)
	}
	return c.Rules[i]
}

func wantOpt(t *testing.T, r *topology.Rule, o *topology.Option, name string, neg bool, args ...string) {
	t.Helper()
	if o == nil {
		t.Errorf("line %d: no option --%s in %q", r.Line, name, r.Text)
		return
	}
	if o.Name != name || o.Neg != neg || !slices.Equal(o.Args, args) {
		t.Errorf("line %d: option %+v, want --%s neg=%v %q", r.Line, *o, name, neg, args)
	}
}

func wantNeg(t *testing.T, r *topology.Rule, what string, n *topology.Negatable, neg bool, v string) {
	t.Helper()
	if n == nil || n.Neg != neg || n.Value != v {
		t.Errorf("line %d: %s = %+v, want neg=%v %q", r.Line, what, n, neg, v)
	}
}

// TestDockerHostRules checks the matches and targets Docker writes in the
// root namespace, on the recorded host (values as in record.sh).
func TestDockerHostRules(t *testing.T) {
	fw := parseFixture(t, cmdout("docker-shaped", "netns", "host", "iptables-save-c.txt"))
	if fw.Backend != "nf_tables" {
		t.Errorf("backend %q", fw.Backend)
	}

	r := ruleAt(t, fw, "nat", "PREROUTING", 0)
	if m := r.Match("addrtype"); m == nil {
		t.Errorf("no addrtype in %q", r.Text)
	} else {
		wantOpt(t, r, m.Opt("dst-type"), "dst-type", false, "LOCAL")
	}
	if r.Target != "DOCKER-INGRESS" || r.Goto || !r.HasCounters || r.Packets == 0 {
		t.Errorf("line %d: %+v", r.Line, r)
	}

	r = ruleAt(t, fw, "nat", "OUTPUT", 1)
	wantNeg(t, r, "-d", r.Dst, true, "127.0.0.0/8")

	r = ruleAt(t, fw, "nat", "DOCKER-INGRESS", 0)
	wantNeg(t, r, "-p", r.Proto, false, "tcp")
	wantOpt(t, r, r.Match("tcp").Opt("dport"), "dport", false, "8080")
	wantOpt(t, r, r.TargetOpt("to-destination"), "to-destination", false, "172.18.0.2:8080")
	if r.Target != "DNAT" || r.Packets == 0 {
		t.Errorf("line %d: %q target %s packets %d", r.Line, r.Text, r.Target, r.Packets)
	}

	r = ruleAt(t, fw, "nat", "POSTROUTING", 1)
	wantNeg(t, r, "-s", r.Src, false, "172.18.0.0/16")
	wantNeg(t, r, "-o", r.OutIface, true, "docker_gwbridge")
	if r.Target != "MASQUERADE" || r.TargetOpts != nil {
		t.Errorf("line %d: %q", r.Line, r.Text)
	}

	r = ruleAt(t, fw, "filter", "INPUT", 0)
	wantOpt(t, r, r.Match("multiport").Opt("dports"), "dports", false, "2377,7946")
	wantOpt(t, r, r.Match("comment").Opt("comment"), "comment", false, "swarm control plane")

	r = ruleAt(t, fw, "filter", "INPUT", 2)
	wantOpt(t, r, r.Match("state").Opt("state"), "state", false, "NEW,RELATED,ESTABLISHED")

	r = ruleAt(t, fw, "filter", "INPUT", 3)
	wantOpt(t, r, r.TargetOpt("reject-with"), "reject-with", false, "tcp-reset")

	r = ruleAt(t, fw, "filter", "INPUT", 4)
	wantOpt(t, r, r.Match("tcp").Opt("sport"), "sport", false, "1024:65535")
	wantOpt(t, r, r.TargetOpt("log-prefix"), "log-prefix", false, "mt discard: ")
	wantOpt(t, r, r.TargetOpt("log-level"), "log-level", false, "6")

	r = ruleAt(t, fw, "filter", "INPUT", 5)
	if r.Fragment == nil || r.Fragment.Neg || r.Target != "DROP" {
		t.Errorf("line %d: %q fragment %+v", r.Line, r.Text, r.Fragment)
	}

	r = ruleAt(t, fw, "filter", "DOCKER", 1)
	wantNeg(t, r, "-i", r.InIface, true, "docker_gwbridge")
	wantNeg(t, r, "-o", r.OutIface, false, "docker_gwbridge")

	r = ruleAt(t, fw, "filter", "DOCKER-INGRESS", 1)
	wantOpt(t, r, r.Match("conntrack").Opt("ctstate"), "ctstate", false, "RELATED,ESTABLISHED")

	r = ruleAt(t, fw, "filter", "DOCKER-USER", 0)
	wantNeg(t, r, "-i", r.InIface, false, "veth+")
	if r.Target != "DOCKER-USER-LOG" || !r.Goto {
		t.Errorf("line %d: %q: goto %v %s", r.Line, r.Text, r.Goto, r.Target)
	}

	r = ruleAt(t, fw, "filter", "DOCKER-USER-LOG", 0)
	m := r.Match("addrtype")
	wantOpt(t, r, m.Opt("src-type"), "src-type", true, "LOCAL")
	wantOpt(t, r, m.Opt("limit-iface-in"), "limit-iface-in", false)
	if r.Target != "RETURN" {
		t.Errorf("line %d: target %s", r.Line, r.Target)
	}

	if c := fw.Table("filter").Chain("DOCKER-USER"); c.Policy != "-" {
		t.Errorf("user chain policy %q", c.Policy)
	}
}

// TestDockerSandboxAndTaskRules: the ingress sandbox's marks, the
// emulated FWM service, and the task's REDIRECT and embedded-DNS rules.
func TestDockerSandboxAndTaskRules(t *testing.T) {
	fw := parseFixture(t, cmdout("docker-shaped", "netns", "ingress_sbox", "iptables-save.txt"))
	r := ruleAt(t, fw, "mangle", "PREROUTING", 0)
	wantOpt(t, r, r.TargetOpt("set-xmark"), "set-xmark", false, "0x100/0xffffffff")
	if r.HasCounters {
		t.Errorf("counters in a file saved without -c")
	}
	r = ruleAt(t, fw, "nat", "PREROUTING", 0)
	wantOpt(t, r, r.Match("mark").Opt("mark"), "mark", false, "0x100")
	r = ruleAt(t, fw, "nat", "PREROUTING", 1)
	st := r.Match("statistic")
	wantOpt(t, r, st.Opt("mode"), "mode", false, "random")
	wantOpt(t, r, st.Opt("probability"), "probability", false, "0.50000000000")
	r = ruleAt(t, fw, "nat", "MT-FWM-256", 0)
	st = r.Match("statistic")
	wantOpt(t, r, st.Opt("mode"), "mode", false, "nth")
	wantOpt(t, r, st.Opt("every"), "every", false, "2")
	wantOpt(t, r, st.Opt("packet"), "packet", false, "0")
	wantOpt(t, r, r.TargetOpt("to-destination"), "to-destination", false, "10.255.0.5")
	r = ruleAt(t, fw, "nat", "POSTROUTING", 0)
	wantOpt(t, r, r.TargetOpt("to-source"), "to-source", false, "10.255.0.2")
	r = ruleAt(t, fw, "nat", "POSTROUTING", 1)
	ct := r.Match("conntrack")
	wantOpt(t, r, ct.Opt("ctstate"), "ctstate", false, "DNAT")
	wantOpt(t, r, ct.Opt("ctorigdst"), "ctorigdst", false, "172.18.0.2")
	wantOpt(t, r, ct.Opt("ctorigdstport"), "ctorigdstport", false, "8080")

	fw = parseFixture(t, cmdout("docker-shaped", "netns", "7f3c9a1e5b2d", "iptables-save-c.txt"))
	r = ruleAt(t, fw, "nat", "PREROUTING", 0)
	wantNeg(t, r, "-d", r.Dst, false, "10.255.0.5/32")
	wantOpt(t, r, r.TargetOpt("to-ports"), "to-ports", false, "80")
	if r.Target != "REDIRECT" || r.Packets == 0 {
		t.Errorf("line %d: %q target %s packets %d", r.Line, r.Text, r.Target, r.Packets)
	}
	r = ruleAt(t, fw, "nat", "DOCKER_POSTROUTING", 0)
	wantOpt(t, r, r.TargetOpt("to-source"), "to-source", false, ":53")
	r = ruleAt(t, fw, "mangle", "OUTPUT", 0)
	wantOpt(t, r, r.TargetOpt("set-xmark"), "set-xmark", false, "0x13d/0xffffffff")
}

// TestDockerIPVSRules: the text-only fixture with the -m ipvs rules this
// kernel cannot load (see the README).
func TestDockerIPVSRules(t *testing.T) {
	fw := parseFixture(t, cmdout("text-only", "ingress_sbox-ipvs.iptables-save-c.txt"))
	r := ruleAt(t, fw, "nat", "POSTROUTING", 0)
	wantNeg(t, r, "-d", r.Dst, false, "10.255.0.0/16")
	wantOpt(t, r, r.Match("ipvs").Opt("ipvs"), "ipvs", false)
	wantOpt(t, r, r.TargetOpt("to-source"), "to-source", false, "10.255.0.2")
	if r.Packets != 12 || r.Bytes != 720 {
		t.Errorf("counters [%d:%d]", r.Packets, r.Bytes)
	}
	r = ruleAt(t, fw, "nat", "POSTROUTING", 1)
	m := r.Match("ipvs")
	wantOpt(t, r, m.Opt("vaddr"), "vaddr", false, "10.255.0.4/32")
	wantOpt(t, r, m.Opt("vport"), "vport", false, "8080")
	wantOpt(t, r, m.Opt("vdir"), "vdir", false, "ORIGINAL")
	wantOpt(t, r, m.Opt("vmethod"), "vmethod", false, "MASQ")
	r = ruleAt(t, fw, "nat", "POSTROUTING", 2)
	wantOpt(t, r, r.Match("ipvs").Opt("ipvs"), "ipvs", true)
}

// TestOldNegation: iptables before 1.4.3 printed "--dport ! 22" and
// "-s ! 10.0.0.0/8"; both read as negations (Render then prints the
// modern form).
func TestOldNegation(t *testing.T) {
	fw := parseFixture(t, cmdout("text-only", "old-negation.iptables-save.txt"))
	r := ruleAt(t, fw, "filter", "INPUT", 0)
	wantNeg(t, r, "-s", r.Src, true, "10.0.0.0/255.0.0.0")
	wantOpt(t, r, r.Match("tcp").Opt("dport"), "dport", true, "22")
	if got, want := r.Render(), "-A INPUT ! -s 10.0.0.0/255.0.0.0 -p tcp -m tcp ! --dport 22 -j DROP"; got != want {
		t.Errorf("render %q, want %q", got, want)
	}
	r = ruleAt(t, fw, "filter", "INPUT", 1)
	wantNeg(t, r, "-i", r.InIface, true, "lo")
	wantOpt(t, r, r.Match("tcp").Opt("tcp-flags"), "tcp-flags", false, "SYN,RST,ACK", "SYN")
	wantOpt(t, r, r.Match("state").Opt("state"), "state", true, "ESTABLISHED")
}

// TestLegacyVariant: iptables-legacy-save output (recorded) with a DROP
// policy, MASQUERADE --to-ports and an unquoted comment.
func TestLegacyVariant(t *testing.T) {
	fw := parseFixture(t, cmdout("variants", "legacy-iptables-save-c.txt"))
	if fw.Backend != "legacy" {
		t.Errorf("backend %q", fw.Backend)
	}
	if c := fw.Table("filter").Chain("INPUT"); c.Policy != "DROP" {
		t.Errorf("INPUT policy %q", c.Policy)
	}
	r := ruleAt(t, fw, "filter", "INPUT", 2)
	wantNeg(t, r, "-s", r.Src, true, "10.9.0.0/24")
	wantOpt(t, r, r.Match("tcp").Opt("dport"), "dport", true, "22")
	r = ruleAt(t, fw, "filter", "INPUT", 3)
	wantOpt(t, r, r.Match("comment").Opt("comment"), "comment", false, "plain_comment")
	r = ruleAt(t, fw, "nat", "POSTROUTING", 0)
	wantOpt(t, r, r.TargetOpt("to-ports"), "to-ports", false, "1024-65535")
}
