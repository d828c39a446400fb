package nft

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// ruleGen builds random rules from the grammar the decoder supports, each
// valid for iptables-restore in the chain it is generated for.
type ruleGen struct {
	r *rand.Rand
	// xt holds the extensions of xtExtKinds the kernel can load; sets
	// are the ipsets created in the namespace for -m set.
	xt   map[string]bool
	sets []string
}

// xtExtKinds are the generated matches a kernel may lack (see
// xtprobe_linux_test.go).
var xtExtKinds = []string{"bpf", "policy", "u32", "set"}

func (g *ruleGen) chance(p float64) bool { return g.r.Float64() < p }
func (g *ruleGen) pick(s ...string) string {
	return s[g.r.IntN(len(s))]
}
func (g *ruleGen) neg(p float64) string {
	if g.chance(p) {
		return "! "
	}
	return ""
}

func (g *ruleGen) ip() string {
	return fmt.Sprintf("%d.%d.%d.%d", 1+g.r.IntN(223), g.r.IntN(256), g.r.IntN(256), g.r.IntN(256))
}

// addr is an -s/-d argument: a prefix (never /0, which iptables drops) or,
// sometimes, a dotted non-contiguous mask.
func (g *ruleGen) addr() string {
	if g.chance(0.1) {
		return g.ip() + "/" + g.pick("255.0.255.0", "255.255.0.255", "0.255.255.255")
	}
	return fmt.Sprintf("%s/%d", g.ip(), 1+g.r.IntN(32))
}

func (g *ruleGen) iface() string {
	n := g.pick("eth0", "eth1", "docker_gwbridge", "docker0", "veth12ab", "br0", "lo", "vxlan0")
	if g.chance(0.3) {
		n = n[:1+g.r.IntN(len(n)-1)] + "+"
	}
	return n
}

func (g *ruleGen) port() int { return g.r.IntN(65536) }

func (g *ruleGen) portSpec() string {
	switch g.r.IntN(5) {
	case 0:
		lo := g.port()
		return fmt.Sprintf("%d:%d", lo, lo+g.r.IntN(65536-lo))
	case 1:
		return fmt.Sprintf("%d:", g.port())
	case 2:
		return fmt.Sprintf(":%d", g.port())
	}
	return strconv.Itoa(g.port())
}

// ctPort is a conntrack port or an explicit lo:hi range.
func (g *ruleGen) ctPort() string {
	lo := g.port()
	if g.chance(0.5) {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d:%d", lo, lo+g.r.IntN(65536-lo))
}

func (g *ruleGen) list(names []string) string {
	var out []string
	for _, n := range names {
		if g.chance(0.4) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = append(out, names[g.r.IntN(len(names))])
	}
	return strings.Join(out, ",")
}

// comment is a quoted iptables-restore argument for a comment or log
// prefix, with the characters xtables_save_string quotes and escapes.
func (g *ruleGen) comment() string {
	const cs = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_- .:/=,'\"\\"
	n := 1 + g.r.IntN(20)
	b := make([]byte, n)
	for i := range b {
		b[i] = cs[g.r.IntN(len(cs))]
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		s = "c"
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

type chainSpec struct {
	table, chain string
	in, out      bool // -i / -o allowed
}

// rule returns one "-A ..." line for c.
func (g *ruleGen) rule(c chainSpec, userChains []string) string {
	var parts []string
	add := func(s ...string) { parts = append(parts, s...) }
	add("-A", c.chain)
	if g.chance(0.4) {
		add(g.neg(0.3) + "-s " + g.addr())
	}
	if g.chance(0.4) {
		add(g.neg(0.3) + "-d " + g.addr())
	}
	if c.in && g.chance(0.3) {
		add(g.neg(0.3) + "-i " + g.iface())
	}
	if c.out && g.chance(0.3) {
		add(g.neg(0.3) + "-o " + g.iface())
	}
	proto := ""
	switch g.r.IntN(6) {
	case 0, 1:
		proto = "tcp"
	case 2:
		proto = "udp"
	case 3:
		proto = g.pick("icmp", "47", "sctp", "esp")
	}
	protoNeg := proto != "" && g.chance(0.15)
	if proto != "" {
		if protoNeg {
			add("! -p " + proto)
		} else {
			add("-p " + proto)
		}
	}
	if g.chance(0.05) {
		add(g.neg(0.5) + "-f")
	}
	l4 := !protoNeg && (proto == "tcp" || proto == "udp")
	// Matches in random order, each at most once.
	kinds := []string{"ports", "multiport", "conntrack", "state", "mark", "addrtype", "statistic", "comment"}
	for _, k := range xtExtKinds {
		if g.xt[k] && (k != "set" || len(g.sets) > 0) {
			kinds = append(kinds, k)
		}
	}
	g.r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	for _, k := range kinds[:g.r.IntN(4)] {
		switch k {
		case "ports":
			if !l4 {
				continue
			}
			m := []string{"-m " + proto}
			if g.chance(0.6) {
				m = append(m, g.neg(0.3)+"--sport "+g.portSpec())
			}
			if g.chance(0.7) || len(m) == 1 {
				m = append(m, g.neg(0.3)+"--dport "+g.portSpec())
			}
			if proto == "tcp" && g.chance(0.3) {
				fl := []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG"}
				if g.chance(0.2) {
					m = append(m, g.neg(0.3)+"--syn")
				} else {
					m = append(m, g.neg(0.3)+"--tcp-flags "+g.list(fl)+" "+g.pick(g.list(fl), "NONE"))
				}
			}
			add(m...)
		case "multiport":
			if !l4 {
				continue
			}
			var ports []string
			for used := 0; used < 1+g.r.IntN(14); {
				if g.chance(0.3) && used < 13 {
					// libxt_multiport refuses a range with lo >= hi
					// ("invalid portrange specified").
					lo := g.r.IntN(65535)
					ports = append(ports, fmt.Sprintf("%d:%d", lo, lo+1+g.r.IntN(65535-lo)))
					used += 2
				} else {
					ports = append(ports, strconv.Itoa(g.port()))
					used++
				}
			}
			add("-m multiport " + g.neg(0.3) + g.pick("--sports ", "--dports ", "--ports ") + strings.Join(ports, ","))
		case "conntrack":
			states := []string{"INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT"}
			m := []string{"-m conntrack"}
			if g.chance(0.8) {
				m = append(m, g.neg(0.2)+"--ctstate "+g.list(states))
			}
			if g.chance(0.3) {
				m = append(m, g.neg(0.2)+"--ctproto "+g.pick("6", "17", "tcp", "udp"))
				if g.chance(0.5) {
					m = append(m, g.neg(0.2)+g.pick("--ctorigsrcport ", "--ctorigdstport ", "--ctreplsrcport ", "--ctrepldstport ")+g.ctPort())
				}
			}
			if g.chance(0.3) {
				m = append(m, g.neg(0.2)+g.pick("--ctorigsrc ", "--ctorigdst ", "--ctreplsrc ", "--ctrepldst ")+
					fmt.Sprintf("%s/%d", g.ip(), 1+g.r.IntN(32)))
			}
			if g.chance(0.2) {
				m = append(m, g.neg(0.2)+"--ctstatus "+g.pick("NONE", g.list([]string{"EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED"})))
			}
			if g.chance(0.15) {
				lo := g.r.IntN(1000)
				m = append(m, g.neg(0.2)+"--ctexpire "+g.pick(strconv.Itoa(lo), fmt.Sprintf("%d:%d", lo, lo+g.r.IntN(1000))))
			}
			if g.chance(0.15) {
				m = append(m, "--ctdir "+g.pick("ORIGINAL", "REPLY"))
			}
			if len(m) == 1 {
				m = append(m, "--ctstate NEW")
			}
			add(m...)
		case "state":
			add("-m state " + g.neg(0.2) + "--state " + g.list([]string{"INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED"}))
		case "mark":
			v := fmt.Sprintf("0x%x", g.r.Uint32())
			if g.chance(0.5) {
				v += fmt.Sprintf("/0x%x", g.r.Uint32()|1)
			}
			add("-m mark " + g.neg(0.3) + "--mark " + v)
		case "addrtype":
			types := []string{"UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE"}
			m := []string{"-m addrtype"}
			if g.chance(0.6) {
				m = append(m, g.neg(0.3)+"--src-type "+g.list(types))
			}
			if g.chance(0.6) || len(m) == 1 {
				m = append(m, g.neg(0.3)+"--dst-type "+g.list(types))
			}
			switch {
			case c.in && !c.out && g.chance(0.2):
				m = append(m, "--limit-iface-in")
			case c.out && !c.in && g.chance(0.2):
				m = append(m, "--limit-iface-out")
			}
			add(m...)
		case "statistic":
			if g.chance(0.5) {
				add(fmt.Sprintf("-m statistic --mode random %s--probability %.4f", g.neg(0.2), g.r.Float64()))
			} else {
				every := 1 + g.r.IntN(10)
				add(fmt.Sprintf("-m statistic --mode nth %s--every %d --packet %d", g.neg(0.2), every, g.r.IntN(every)))
			}
		case "comment":
			add("-m comment --comment " + g.comment())
		case "bpf":
			add(`-m bpf --bytecode "` + g.bytecode() + `"`)
		case "policy":
			if m := g.policy(c); m != "" {
				add(m)
			}
		case "u32":
			add("-m u32 " + g.neg(0.3) + `--u32 "` + g.u32() + `"`)
		case "set":
			add(g.set())
		}
	}
	add(g.target(c, proto, l4, userChains)...)
	return strings.Join(parts, " ")
}

// bytecode is a --bytecode program the kernel's checker accepts: Docker's
// VNI match for a random VNI, or short return-only programs.
func (g *ruleGen) bytecode() string {
	switch g.r.IntN(3) {
	case 0:
		return fmt.Sprintf("1,6 0 0 %d", g.r.Uint32())
	case 1:
		return fmt.Sprintf("4,48 0 0 9,21 %d %d %d,6 0 0 %d,6 0 0 0", g.r.IntN(2), g.r.IntN(2), g.r.IntN(256), g.r.Uint32())
	}
	return dockerBytecode(uint32(g.r.IntN(1 << 24)))
}

// policy is a -m policy match valid in c (--dir in where packets come in,
// out where they go out; none in user chains, which any hook may reach),
// with up to four elements when --strict.
func (g *ruleGen) policy(c chainSpec) string {
	var dirs []string
	if c.in {
		dirs = append(dirs, "in")
	}
	if c.out {
		dirs = append(dirs, "out")
	}
	if len(dirs) == 0 {
		return ""
	}
	m := []string{"-m policy --dir " + g.pick(dirs...)}
	if g.chance(0.4) {
		return m[0] + " --pol none"
	}
	m = append(m, "--pol ipsec")
	strict := g.chance(0.4)
	n := 1
	if strict {
		m = append(m, "--strict")
		n += g.r.IntN(4)
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			m = append(m, "--next")
		}
		var e []string
		if g.chance(0.4) {
			e = append(e, g.neg(0.3)+"--reqid "+strconv.FormatUint(uint64(g.r.Uint32()), 10))
		}
		if g.chance(0.4) {
			e = append(e, g.neg(0.3)+fmt.Sprintf("--spi 0x%x", g.r.Uint32()))
		}
		if g.chance(0.4) {
			e = append(e, g.neg(0.3)+"--proto "+g.pick("esp", "ah", "ipcomp", "50", "51"))
		}
		switch g.r.IntN(4) {
		case 0:
			e = append(e, g.neg(0.3)+"--mode "+g.pick("transport", "tunnel"))
		case 1: // tunnel addresses need tunnel mode
			e = append(e, g.pick("--mode tunnel", "! --mode transport"))
			if g.chance(0.7) {
				e = append(e, g.neg(0.3)+"--tunnel-src "+g.hostmask())
			}
			if g.chance(0.7) {
				e = append(e, g.neg(0.3)+"--tunnel-dst "+g.hostmask())
			}
		}
		if strict && len(e) == 0 {
			e = append(e, "--mode transport")
		}
		m = append(m, e...)
	}
	return strings.Join(m, " ")
}

func (g *ruleGen) hostmask() string {
	switch g.r.IntN(3) {
	case 0:
		return g.ip()
	case 1:
		return g.ip() + "/" + g.pick("255.0.255.0", "0.0.0.255")
	}
	return fmt.Sprintf("%s/%d", g.ip(), g.r.IntN(33))
}

// u32 is a --u32 expression of up to three tests, numbers in decimal or
// hex, shifts below 32.
func (g *ruleGen) u32() string {
	num := func(max uint32) string {
		v := g.r.Uint32()
		if max > 0 {
			v = uint32(g.r.IntN(int(max)))
		}
		if g.chance(0.5) {
			return fmt.Sprintf("0x%X", v)
		}
		return strconv.FormatUint(uint64(v), 10)
	}
	var tests []string
	for range 1 + g.r.IntN(3) {
		loc := num(64)
		for range g.r.IntN(4) {
			switch op := g.pick("&", "<<", ">>", "@"); op {
			case "<<", ">>":
				loc += op + num(32)
			case "@":
				loc += op + num(64)
			default:
				loc += op + num(0)
			}
		}
		var vals []string
		for range 1 + g.r.IntN(3) {
			v := num(0)
			if g.chance(0.4) {
				v += ":" + num(0)
			}
			vals = append(vals, v)
		}
		tests = append(tests, loc+"="+strings.Join(vals, ","))
	}
	return strings.Join(tests, "&&")
}

// set is a -m set match on one of the namespace's ipsets with the flags
// and counter conditions of libxt_set revision 4.
func (g *ruleGen) set() string {
	var dirs []string
	for range 1 + g.r.IntN(3) {
		dirs = append(dirs, g.pick("src", "dst"))
	}
	m := []string{"-m set " + g.neg(0.3) + "--match-set " + g.pick(g.sets...) + " " + strings.Join(dirs, ",")}
	if g.chance(0.2) {
		m = append(m, "--return-nomatch")
	}
	if g.chance(0.2) {
		m = append(m, "! --update-counters")
	}
	if g.chance(0.2) {
		m = append(m, "! --update-subcounters")
	}
	for _, what := range []string{"packets", "bytes"} {
		v := strconv.FormatUint(g.r.Uint64()>>g.r.IntN(64), 10)
		switch g.r.IntN(6) {
		case 0:
			m = append(m, "--"+what+"-eq "+v)
		case 1:
			m = append(m, "! --"+what+"-eq "+v)
		case 2:
			m = append(m, "--"+what+"-lt "+v)
		case 3:
			m = append(m, "--"+what+"-gt "+v)
		}
	}
	return strings.Join(m, " ")
}

func (g *ruleGen) target(c chainSpec, proto string, l4 bool, userChains []string) []string {
	portRange := func() string {
		lo := 1 + g.r.IntN(60000)
		if g.chance(0.5) {
			return strconv.Itoa(lo)
		}
		return fmt.Sprintf("%d-%d", lo, lo+g.r.IntN(5000))
	}
	flags := func(names ...string) string {
		var out []string
		for _, n := range names {
			if g.chance(0.2) {
				out = append(out, "--"+n)
			}
		}
		return strings.Join(out, " ")
	}
	opts := []string{"", "ACCEPT", "RETURN"}
	if c.table != "nat" { // "not intended for filtering"
		opts = append(opts, "DROP")
	}
	switch c.table {
	case "nat":
		switch c.chain {
		case "PREROUTING", "OUTPUT":
			opts = append(opts, "DNAT", "DNAT", "REDIRECT")
		case "POSTROUTING", "INPUT":
			opts = append(opts, "SNAT", "SNAT")
			if c.chain == "POSTROUTING" {
				opts = append(opts, "MASQUERADE")
			}
		}
	case "mangle":
		opts = append(opts, "MARK", "MARK", "MARK")
	case "filter":
		if c.chain == "INPUT" || c.chain == "FORWARD" || c.chain == "OUTPUT" {
			opts = append(opts, "REJECT")
		}
	}
	opts = append(opts, "LOG", "jump", "goto")
	switch t := g.pick(opts...); t {
	case "":
		return nil
	case "jump", "goto":
		if len(userChains) == 0 {
			return []string{"-j ACCEPT"}
		}
		flag := "-j "
		if t == "goto" {
			flag = "-g "
		}
		return []string{flag + userChains[g.r.IntN(len(userChains))]}
	case "DNAT", "SNAT":
		opt := "--to-destination "
		if t == "SNAT" {
			opt = "--to-source "
		}
		to := ""
		if g.chance(0.8) || !l4 {
			to = g.ip()
			if g.chance(0.2) {
				to += "-" + g.ip()
			}
		}
		if l4 && (to == "" || g.chance(0.5)) {
			to += ":" + portRange()
		}
		out := []string{"-j " + t + " " + opt + to}
		if l4 || t == "SNAT" {
			out = append(out, flags("random", "persistent"))
		}
		if t == "SNAT" {
			out = append(out, flags("random-fully"))
		}
		return out
	case "REDIRECT", "MASQUERADE":
		out := []string{"-j " + t}
		if l4 && g.chance(0.6) {
			out = append(out, "--to-ports "+portRange())
		}
		out = append(out, flags("random"))
		if t == "MASQUERADE" {
			out = append(out, flags("random-fully"))
		}
		return out
	case "MARK":
		v := fmt.Sprintf("0x%x", g.r.Uint32())
		switch g.r.IntN(5) {
		case 0:
			return []string{"-j MARK --set-mark " + v}
		case 1:
			return []string{"-j MARK --set-xmark " + v + fmt.Sprintf("/0x%x", g.r.Uint32())}
		case 2:
			return []string{"-j MARK --and-mark " + v}
		case 3:
			return []string{"-j MARK --or-mark " + v}
		}
		return []string{"-j MARK --xor-mark " + v}
	case "REJECT":
		with := []string{"icmp-net-unreachable", "icmp-host-unreachable", "icmp-port-unreachable",
			"icmp-proto-unreachable", "icmp-net-prohibited", "icmp-host-prohibited", "icmp-admin-prohibited"}
		if proto == "tcp" && l4 {
			with = append(with, "tcp-reset")
		}
		return []string{"-j REJECT --reject-with " + g.pick(with...)}
	case "LOG":
		out := []string{"-j LOG"}
		if g.chance(0.6) {
			out = append(out, "--log-prefix "+g.comment())
		}
		if g.chance(0.4) {
			out = append(out, "--log-level "+strconv.Itoa(g.r.IntN(8)))
		}
		out = append(out, flags("log-tcp-sequence", "log-tcp-options", "log-ip-options", "log-uid", "log-macdecode"))
		return out
	}
	return []string{"-j RETURN"}
}

// builtins lists the chains of each table with the -i/-o each allows.
var builtins = map[string][]chainSpec{
	"filter": {{"filter", "INPUT", true, false}, {"filter", "FORWARD", true, true}, {"filter", "OUTPUT", false, true}},
	"nat": {{"nat", "PREROUTING", true, false}, {"nat", "INPUT", true, false}, {"nat", "OUTPUT", false, true},
		{"nat", "POSTROUTING", false, true}},
	"mangle": {{"mangle", "PREROUTING", true, false}, {"mangle", "INPUT", true, false}, {"mangle", "FORWARD", true, true},
		{"mangle", "OUTPUT", false, true}, {"mangle", "POSTROUTING", false, true}},
	"raw": {{"raw", "PREROUTING", true, false}, {"raw", "OUTPUT", false, true}},
}

// ruleset returns an iptables-restore file with about n rules.
func (g *ruleGen) ruleset(n int) string {
	var b strings.Builder
	for _, table := range []string{"raw", "mangle", "nat", "filter"} {
		fmt.Fprintf(&b, "*%s\n", table)
		for _, c := range builtins[table] {
			policy := g.pick("ACCEPT", "ACCEPT", "DROP")
			if table == "nat" {
				policy = "ACCEPT"
			}
			fmt.Fprintf(&b, ":%s %s [0:0]\n", c.chain, policy)
		}
		user := []string{"U-" + table + "-B", "U-" + table + "-A", "U-" + table + "-C"}
		for _, u := range user {
			fmt.Fprintf(&b, ":%s - [0:0]\n", u)
		}
		chains := append([]chainSpec(nil), builtins[table]...)
		for _, u := range user[:2] { // U-*-C stays empty
			chains = append(chains, chainSpec{table, u, false, false})
		}
		for i := 0; i < n/4; i++ {
			c := chains[g.r.IntN(len(chains))]
			// user chains only jump forward (no loops): A -> B -> C
			var targets []string
			for _, u := range user {
				if strings.HasPrefix(c.chain, "U-") && u <= c.chain {
					continue
				}
				targets = append(targets, u)
			}
			b.WriteString(g.rule(c, targets) + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}
