package topology

import (
	"net/netip"
	"strings"
)

// Firewall is one namespace's iptables ruleset (IPv4), as iptables-save
// prints it or as decoded from nf_tables.
type Firewall struct {
	// Backend is BackendNFTables or BackendLegacy when known.
	Backend FirewallBackend `json:"backend,omitempty"`
	Tables  []*Table        `json:"tables"`
	// Unparsed are lines that were kept verbatim because they could not
	// be understood; they are reported, never dropped silently.
	Unparsed []Unparsed `json:"unparsed,omitempty"`
	// NotCollected names the tables that were not read, when the
	// firewall was assembled from per-table listings (a bundle's
	// iptables-nat.txt without iptables-filter.txt): evaluating one of
	// them is unknown, never "no rules". Empty for iptables-save and the
	// kernel readers, which see every table.
	NotCollected []string `json:"not_collected,omitempty"`
}

// Unparsed is a line (or decoded rule) the reader did not understand.
type Unparsed struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
}

// Table is one of filter, nat, mangle, raw, security.
type Table struct {
	Name   string   `json:"name"`
	Chains []*Chain `json:"chains"`
}

// Chain is a built-in chain (with a policy) or a user chain (Policy "-").
type Chain struct {
	Name    string `json:"name"`
	Policy  string `json:"policy"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Rules are the chain's decoded rules, Packed the rest, held packed
	// by a reader (see chain.go): read them all through Len, Rule and
	// All.
	Rules  []*Rule   `json:"rules"`
	Packed *RulePack `json:"-"`
}

// Rule is one iptables rule, kept losslessly: the generic header matches
// (-s -d -i -o -p), then the match modules in order, then the target with
// its options, exactly as iptables-save orders them. Evaluate gives them
// meaning.
type Rule struct {
	Chain string `json:"chain"`
	// Text is the rule as iptables-save prints it, without counters:
	// "-A DOCKER-INGRESS -p tcp -m tcp --dport 8080 -j DNAT ...".
	Text        string `json:"text"`
	HasCounters bool   `json:"has_counters,omitempty"`
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	// Line is the line number in the file it was parsed from (0 when
	// decoded from the kernel).
	Line int `json:"line,omitempty"`

	Src      *Negatable `json:"src,omitempty"`      // -s, CIDR
	Dst      *Negatable `json:"dst,omitempty"`      // -d, CIDR
	InIface  *Negatable `json:"in_iface,omitempty"` // -i, may end in +
	OutIface *Negatable `json:"out_iface,omitempty"`
	Proto    *Negatable `json:"proto,omitempty"` // -p
	Fragment *Negatable `json:"fragment,omitempty"`

	Matches []Match `json:"matches,omitempty"` // -m NAME options...

	// Target is ACCEPT, DROP, RETURN, a target extension (DNAT, SNAT,
	// REDIRECT, MARK, MASQUERADE, ...) or a user chain. Empty: no -j/-g
	// (the rule only counts).
	Target     string   `json:"target,omitempty"`
	Goto       bool     `json:"goto,omitempty"`
	TargetOpts []Option `json:"target_opts,omitempty"`

	// The typed arguments of the target, filled by Compile (see there):
	// NAT is the range of DNAT --to-destination, SNAT --to-source and
	// REDIRECT/MASQUERADE --to-ports (nil: none given); SetMark is what a
	// MARK rule does to the mark.
	NAT     *NATRange `json:"-"`
	SetMark *MarkSet  `json:"-"`
	// Undecidable says why the evaluator cannot tell exactly whether this
	// rule matches or what it does: the reader could not recover it
	// exactly (an `iptables -L` listing prints some matches as prose that
	// does not read back), or it is valid iptables the model cannot
	// follow. The evaluator reports a rule whose other parts match as
	// unknown, never as a match or a miss.
	Undecidable string `json:"undecidable,omitempty"`
}

// Negatable is a header match value with its "!".
type Negatable struct {
	Neg   bool   `json:"neg,omitempty"`
	Value string `json:"value"`
	// Net is Value parsed, for -s and -d (filled by Rule.Compile).
	Net netip.Prefix `json:"-"`
}

// Equal compares every field (netip.Prefix has no exported ones for cmp).
func (n Negatable) Equal(o Negatable) bool { return n == o }

// Match is one "-m NAME" with its options.
type Match struct {
	Name string   `json:"name"`
	Opts []Option `json:"opts,omitempty"`
}

// Option is one "[!] --name args..." of a match or target.
type Option struct {
	Name string   `json:"name"` // without the leading dashes
	Neg  bool     `json:"neg,omitempty"`
	Args []string `json:"args,omitempty"`
	// Quoted is set when iptables-save printed the argument quoted: it
	// quotes string arguments (comments, log prefixes) through
	// xtables_save_string unless they are non-empty [A-Za-z0-9_-]. Render
	// quotes such arguments the same way.
	Quoted bool `json:"quoted,omitempty"`

	// Ports are the ports of a tcp/udp --dport/--sport or a multiport
	// --dports/--sports/--ports, Mark the value/mask of -m mark --mark;
	// both filled by Rule.Compile, nil on other options.
	Ports []PortRange `json:"-"`
	Mark  *MarkMask   `json:"-"`
}

// PortRange is an inclusive range of ports; one port has Lo == Hi.
type PortRange struct{ Lo, Hi uint16 }

// Contains reports whether port is in the range.
func (p PortRange) Contains(port int) bool { return port >= int(p.Lo) && port <= int(p.Hi) }

// MarkMask is a mark match: the packet's mark AND Mask equals Value.
type MarkMask struct{ Value, Mask uint32 }

// MarkOp is what a MARK target does.
type MarkOp uint8

const (
	MarkXSet    MarkOp = iota + 1 // --set-xmark V/M: zero the bits of M, then XOR V
	MarkSetBits                   // --set-mark V/M: zero the bits of M, then OR V
	MarkOr                        // --or-mark V
	MarkAnd                       // --and-mark V
	MarkXor                       // --xor-mark V
)

// MarkSet is a MARK target's operation with its value and mask.
type MarkSet struct {
	Op          MarkOp
	Value, Mask uint32
}

// Apply returns mark after the operation.
func (m MarkSet) Apply(mark uint32) uint32 {
	switch m.Op {
	case MarkXSet:
		return mark&^m.Mask ^ m.Value
	case MarkSetBits:
		return mark&^m.Mask | m.Value
	case MarkOr:
		return mark | m.Value
	case MarkAnd:
		return mark & m.Value
	case MarkXor:
		return mark ^ m.Value
	}
	return mark
}

// NATRange is a NAT target's range, as libxt_NAT prints it:
// ADDR[-ADDRHI][:PORT[-PORTHI]]. Addr is invalid when no address is given
// (SNAT --to-source :53, REDIRECT, MASQUERADE); Port is 0 when no port is
// given (the port is kept). A single address or port has Hi equal to it.
type NATRange struct {
	Addr, AddrHi netip.Addr
	Port, PortHi uint16
}

// Equal compares every field (netip.Addr has no exported ones for cmp).
func (n NATRange) Equal(o NATRange) bool { return n == o }

// IptablesTable is one of the tables iptables manages, with its built-in
// chains in save order.
type IptablesTable struct {
	Name     string
	Builtins []string
}

// IptablesTables are the tables iptables manages (family ip), in the order
// iptables-nft-save prints them (its nft_table_type enum).
var IptablesTables = []IptablesTable{
	{"mangle", []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}},
	{"security", []string{"INPUT", "FORWARD", "OUTPUT"}},
	{"raw", []string{"PREROUTING", "OUTPUT"}},
	{"filter", []string{"INPUT", "FORWARD", "OUTPUT"}},
	{"nat", []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}},
}

// Builtin reports whether chain is a built-in chain of table.
func Builtin(table, chain string) bool {
	for _, t := range IptablesTables {
		if t.Name == table {
			for _, c := range t.Builtins {
				if c == chain {
					return true
				}
			}
		}
	}
	return false
}

// Table returns the named table, or nil.
func (f *Firewall) Table(name string) *Table {
	if f == nil {
		return nil
	}
	for _, t := range f.Tables {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Collected reports whether table was read (see NotCollected).
func (f *Firewall) Collected(table string) bool {
	if f == nil {
		return false
	}
	for _, t := range f.NotCollected {
		if t == table {
			return false
		}
	}
	return true
}

// Chain returns the named chain, or nil.
func (t *Table) Chain(name string) *Chain {
	if t == nil {
		return nil
	}
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// RuleCount is the number of rules in all tables.
func (f *Firewall) RuleCount() int {
	n := 0
	if f == nil {
		return 0
	}
	for _, t := range f.Tables {
		for _, c := range t.Chains {
			n += c.Len()
		}
	}
	return n
}

// Match returns the first match module with the given name, or nil.
func (r *Rule) Match(name string) *Match {
	for i := range r.Matches {
		if r.Matches[i].Name == name {
			return &r.Matches[i]
		}
	}
	return nil
}

// Opt returns the first option with the given name, or nil.
func (m *Match) Opt(name string) *Option {
	if m == nil {
		return nil
	}
	for i := range m.Opts {
		if m.Opts[i].Name == name {
			return &m.Opts[i]
		}
	}
	return nil
}

// DPort is the rule's (first) destination port match, `--dport N` (the
// lowest port of a range), 0 when it has none or it is negated.
func (r *Rule) DPort() int { return r.firstPort("dport") }

// SPort is the same for the source port, `--sport N`.
func (r *Rule) SPort() int { return r.firstPort("sport") }

func (r *Rule) firstPort(name string) int {
	for _, m := range r.Matches {
		if o := m.Opt(name); o != nil && !o.Neg && len(o.Ports) > 0 {
			return int(o.Ports[0].Lo)
		}
	}
	return 0
}

// TargetOpt returns the target option with the given name, or nil.
func (r *Rule) TargetOpt(name string) *Option {
	for i := range r.TargetOpts {
		if r.TargetOpts[i].Name == name {
			return &r.TargetOpts[i]
		}
	}
	return nil
}

// Arg is the option's first argument, "" when it has none.
func (o *Option) Arg() string {
	if o == nil || len(o.Args) == 0 {
		return ""
	}
	return o.Args[0]
}

// Render prints the rule in iptables-save syntax (without counters) from its
// structured fields. Readers that decode rules from the kernel use it to fill
// Text; for parsed rules Render(r) == r.Text when the parser kept everything.
func (r *Rule) Render() string {
	var b strings.Builder
	b.WriteString("-A ")
	b.WriteString(r.Chain)
	hdr := func(flag string, n *Negatable) {
		if n == nil {
			return
		}
		if n.Neg {
			b.WriteString(" !")
		}
		b.WriteString(" " + flag + " " + n.Value)
	}
	hdr("-s", r.Src)
	hdr("-d", r.Dst)
	hdr("-i", r.InIface)
	hdr("-o", r.OutIface)
	hdr("-p", r.Proto)
	if r.Fragment != nil {
		if r.Fragment.Neg {
			b.WriteString(" !")
		}
		b.WriteString(" -f")
	}
	for _, m := range r.Matches {
		b.WriteString(" -m " + m.Name)
		writeOpts(&b, m.Opts)
	}
	if r.Target != "" {
		if r.Goto {
			b.WriteString(" -g ")
		} else {
			b.WriteString(" -j ")
		}
		b.WriteString(r.Target)
		writeOpts(&b, r.TargetOpts)
	}
	return b.String()
}

func writeOpts(b *strings.Builder, opts []Option) {
	for _, o := range opts {
		if o.Neg {
			b.WriteString(" !")
		}
		b.WriteString(" --" + o.Name)
		// An argument that must be quoted makes the option read back as
		// quoted: print all of it as such, so Render is stable.
		quoted := o.Quoted
		for _, a := range o.Args {
			quoted = quoted || quoteArg(a) != a
		}
		for _, a := range o.Args {
			b.WriteByte(' ')
			if quoted {
				b.WriteString(saveString(a))
			} else {
				b.WriteString(quoteArg(a))
			}
		}
	}
}

// saveString quotes like iptables' xtables_save_string: bare when the value
// is non-empty and only [A-Za-z0-9_-], else double-quoted with \, " and '
// escaped.
func saveString(a string) string {
	bare := a != ""
	for i := 0; i < len(a) && bare; i++ {
		c := a[i]
		bare = c == '_' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
	}
	if bare {
		return a
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `\'`).Replace(a) + `"`
}

// quoteArg quotes an argument the way iptables-save does (comments and
// anything with spaces or quotes are double-quoted, with \, " and '
// escaped as xtables_save_string does).
func quoteArg(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\"'\\") {
		return a
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `\'`).Replace(a) + `"`
}

// ProtoIs reports whether the rule's -p names protocol p ("tcp", or its
// number), not negated.
func (r *Rule) ProtoIs(p string) bool {
	return r.Proto != nil && !r.Proto.Neg && r.Proto.Value != "all" && protoIs(r.Proto.Value, p)
}

// WithTargetArgs is a copy of r whose target option name has args instead
// (added when r has none), its Text rendered anew: the rule a rewrite of
// that argument makes, e.g. a REDIRECT's --to-ports. The copy is not
// compiled again.
func (r *Rule) WithTargetArgs(name string, args ...string) *Rule {
	c := *r
	c.TargetOpts = append([]Option(nil), r.TargetOpts...)
	found := false
	for i := range c.TargetOpts {
		if c.TargetOpts[i].Name == name {
			c.TargetOpts[i] = Option{Name: name, Args: args}
			found = true
		}
	}
	if !found {
		c.TargetOpts = append(c.TargetOpts, Option{Name: name, Args: args})
	}
	c.Text = c.Render()
	return &c
}
