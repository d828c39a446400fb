package topology

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"

	"github.com/meshtrace/meshtrace/internal/textsafe"
)

// Report is what `inspect` prints: the model plus its published ports and
// service VIPs.
type Report struct {
	*Model
	Published []Published `json:"published"`
	// VIPs are the service VIPs (east-west) with their paths' summaries.
	VIPs []VIPSummary `json:"service_vips"`
}

// VIPSummary is a service VIP as inspect reports it: the path from the
// first task that can call it (none when no task of this node is on its
// network).
type VIPSummary struct {
	ServiceVIP
	// Verdict is the path's from Clients[0], "" when no client is known.
	Verdict  Verdict      `json:"verdict,omitempty"`
	Backends []netip.Addr `json:"backends"`
}

// NewReport summarises m's published ports and service VIPs.
func NewReport(m *Model) *Report {
	pub := PublishedPorts(m)
	if pub == nil {
		pub = []Published{}
	}
	r := &Report{Model: m, Published: pub, VIPs: []VIPSummary{}}
	for _, v := range ServiceVIPs(m) {
		s := VIPSummary{ServiceVIP: v, Backends: []netip.Addr{}}
		if len(v.Clients) > 0 {
			if p, err := FindPath(m, Query{Proto: "tcp", VIP: v.VIP, Netns: v.Clients[0]}); err == nil {
				s.Verdict = p.Verdict
				for _, b := range p.Backends {
					s.Backends = append(s.Backends, b.IP)
				}
			}
		}
		r.VIPs = append(r.VIPs, s)
	}
	return r
}

// SchemaVersion is the "schema_version" every JSON document meshtrace
// prints carries as its first key (docs/json.md). It changes when a key is
// removed or changes meaning; added keys keep it.
const SchemaVersion = 1

// WriteJSON writes v as indented JSON, a document of docs/json.md: an
// object gets "schema_version" as its first key (unless it has one).
func WriteJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if version := fmt.Sprintf(`"schema_version": %d`, SchemaVersion); len(b) > 1 && b[0] == '{' && !bytes.HasPrefix(b, []byte("{\n  \"schema_version\"")) {
		if string(b) == "{}" {
			b = []byte("{\n  " + version + "\n}")
		} else {
			b = append([]byte("{\n  "+version+","), b[1:]...)
		}
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteInspectText writes the model as a readable tree.
func WriteInspectText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "source: %s, %d namespaces\n", esc(r.Source), len(r.Namespaces))
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", esc(n))
	}
	for _, ns := range r.Namespaces {
		b.WriteString("\n")
		fmt.Fprintf(&b, "%s  [%s]", esc(ns.Name), esc(string(ns.Role)))
		if d := ns.Docker; d != nil {
			for _, kv := range [][2]string{{"service", d.Service}, {"task", d.Task}, {"container", short(d.Container)}, {"network", d.Network}} {
				if kv[1] != "" {
					fmt.Fprintf(&b, "  %s=%s", kv[0], esc(kv[1]))
				}
			}
		}
		b.WriteString("\n")
		if len(ns.RoleEvidence) > 0 {
			fmt.Fprintf(&b, "  role: %s\n", esc(strings.Join(ns.RoleEvidence, "; ")))
		}
		if ns.Links == nil {
			b.WriteString("  links: not collected\n")
		}
		for _, l := range ns.Links {
			if l.Name == "lo" {
				continue
			}
			fmt.Fprintf(&b, "  %-16s %-7s mtu %d", esc(l.Name), esc(orDash(l.Kind)), l.MTU)
			if !l.Up {
				b.WriteString("  DOWN")
			}
			var addrs []string
			for _, a := range l.Addrs {
				if a.Addr().Is4() {
					addrs = append(addrs, a.String())
				}
			}
			if len(addrs) > 0 {
				b.WriteString("  " + strings.Join(addrs, " "))
			}
			if l.Master != "" {
				b.WriteString("  master " + esc(l.Master))
			}
			if p := l.Peer; p != nil {
				switch {
				case p.Netns != "":
					fmt.Fprintf(&b, "  peer %s/%s", esc(p.Netns), esc(p.Ifname))
				case p.NetnsID >= 0:
					fmt.Fprintf(&b, "  peer if%d in netnsid %d (unresolved)", p.Index, p.NetnsID)
				default:
					fmt.Fprintf(&b, "  peer if%d", p.Index)
				}
			}
			if v := l.VXLAN; v != nil {
				fmt.Fprintf(&b, "  vxlan id %d port %d", v.ID, v.Port)
				if v.Local.IsValid() {
					b.WriteString(" local " + v.Local.String())
				}
			}
			if l.KindFrom != "" {
				b.WriteString("  (kind from wiring)")
			}
			b.WriteString("\n")
		}
		writeFirewallSummary(&b, ns)
		writeLB(&b, ns)
		for _, f := range ns.FDB {
			if f.Dst.IsValid() {
				fmt.Fprintf(&b, "  fdb %s dev %s dst %s %s\n", f.MAC, esc(f.Dev), f.Dst, esc(f.State))
			}
		}
		if ns.Conntrack != nil {
			fmt.Fprintf(&b, "  conntrack: %d entries\n", len(ns.Conntrack))
		}
		for _, e := range ns.Errors {
			fmt.Fprintf(&b, "  error: %s\n", esc(e))
		}
	}
	b.WriteString("\npublished:\n")
	switch host := r.Lookup("host"); {
	case host == nil || host.Firewall == nil:
		b.WriteString("  not known: the host's iptables-save was not collected\n")
	case len(r.Published) == 0:
		b.WriteString("  none\n")
	}
	for _, p := range r.Published {
		state := "complete"
		switch {
		case p.Unknown:
			state = "UNKNOWN (meshtrace path --port " + fmt.Sprint(p.Port) + " says what was not collected)"
		case !p.Complete:
			state = "BROKEN (meshtrace path --port " + fmt.Sprint(p.Port) + " says where)"
		}
		fmt.Fprintf(&b, "  %s/%d  fwmark %d  backends %s  %s\n", esc(p.Proto), p.Port, p.FWMark, orDash(joinStrings(p.Backends, ", ")), state)
	}
	writeVIPs(&b, r.VIPs)
	return writeText(w, &b)
}

// writeVIPs lists the service VIPs, when there are any, each with its
// east-west path's summary.
func writeVIPs(b *strings.Builder, vips []VIPSummary) {
	if len(vips) == 0 {
		return
	}
	b.WriteString("\nservice VIPs (east-west):\n")
	for _, v := range vips {
		svc := ""
		if v.Service != "" {
			svc = "  service " + esc(v.Service)
		}
		if len(v.Clients) == 0 {
			fmt.Fprintf(b, "  %s%s  no task of this node is on its network\n", v.VIP, svc)
			continue
		}
		from := esc(v.Clients[0])
		state := "complete"
		switch v.Verdict {
		case VerdictUnknown:
			state = "UNKNOWN (meshtrace path --vip " + v.VIP.String() + " --netns " + from + " says what was not collected)"
		case VerdictBroken:
			state = "BROKEN (meshtrace path --vip " + v.VIP.String() + " --netns " + from + " says where)"
		}
		fmt.Fprintf(b, "  %s%s  from %s  backends %s  %s\n", v.VIP, svc, from, orDash(joinStrings(v.Backends, ", ")), state)
	}
}

// esc escapes a string from the node or a bundle for text output.
var esc = textsafe.String

// writeText writes a rendered text, escaped once more as a whole (a
// string printed without esc still cannot reach the terminal raw).
func writeText(w io.Writer, b *strings.Builder) error {
	_, err := io.WriteString(w, textsafe.Text(b.String()))
	return err
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// joinStrings joins the String() of each element.
func joinStrings[T fmt.Stringer](xs []T, sep string) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(x.String())
	}
	return b.String()
}

// addrString is a's text, "" for the zero address.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeFirewallSummary(b *strings.Builder, ns *Namespace) {
	if ns.Firewall == nil {
		b.WriteString("  firewall: not collected\n")
		return
	}
	var parts []string
	for _, t := range ns.Firewall.Tables {
		n := 0
		for _, c := range t.Chains {
			n += c.Len()
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", esc(t.Name), n))
		}
	}
	be := esc(string(ns.Firewall.Backend))
	if be != "" {
		be += ", "
	}
	if len(parts) == 0 {
		fmt.Fprintf(b, "  firewall: %sno rules\n", be)
	} else {
		fmt.Fprintf(b, "  firewall: %s%d rules (%s)\n", be, ns.Firewall.RuleCount(), strings.Join(parts, ", "))
	}
	for _, t := range []string{"nat", "mangle"} {
		for _, c := range ns.Firewall.Table(t).chains() {
			for _, r := range c.All() {
				switch r.Target {
				case "DNAT", "SNAT", "REDIRECT", "MARK", "MASQUERADE":
					fmt.Fprintf(b, "    %s %s\n", t, esc(r.Text))
				}
			}
		}
	}
	for _, u := range ns.Firewall.Unparsed {
		where := fmt.Sprintf("line %d", u.Line)
		if u.File != "" {
			where = fmt.Sprintf("%s:%d", esc(u.File), u.Line)
		}
		fmt.Fprintf(b, "    not understood (%s): %s: %s\n", where, esc(u.Text), esc(u.Reason))
	}
}

func (t *Table) chains() []*Chain {
	if t == nil {
		return nil
	}
	return t.Chains
}

func writeLB(b *strings.Builder, ns *Namespace) {
	// An unavailable IPVS is a node-wide note; repeat it only where a
	// load balancer is expected.
	if ns.IPVS != nil && !ns.IPVS.Available && (ns.Role == RoleIngressSandbox || ns.Role == RoleLB) {
		fmt.Fprintf(b, "  ipvs: unavailable: %s\n", esc(ns.IPVS.Reason))
	}
	for _, s := range ns.LBServices() {
		impl := "kernel IPVS"
		if s.Impl == LBIptables {
			impl = "emulated with iptables statistic/DNAT rules"
		}
		fmt.Fprintf(b, "  lb: %s %s (%s)\n", esc(svcName(s)), esc(s.Scheduler), impl)
		for _, d := range s.Dests {
			fmt.Fprintf(b, "    -> %s:%d %s weight %d active %d inactive %d\n", d.Addr, d.Port, esc(d.Forward), d.Weight, d.ActiveConns, d.InactConns)
		}
	}
}

// WritePathText draws the path the way people draw it on a whiteboard.
func WritePathText(w io.Writer, p *Path) error {
	var b strings.Builder
	what := fmt.Sprintf("%s/%d", esc(p.Proto), p.Port)
	if p.VIP.IsValid() {
		what = fmt.Sprintf("%s VIP %s port %d from %s", esc(p.Proto), p.VIP, p.Port, esc(p.From))
	}
	v := p.Verdict
	if v == VerdictComplete && !p.Complete {
		v = VerdictBroken
	}
	writePathHead(&b, what, v)
	for _, h := range p.Hops {
		writeHop(&b, "  ", h)
	}
	if len(p.Backends) > 0 {
		b.WriteString("\n  backends:\n")
	}
	for _, be := range p.Backends {
		where := "remote node"
		if be.Netns != nil {
			where = esc(*be.Netns)
			if be.Task != "" {
				where += " (" + esc(be.Task) + ")"
			}
		} else if be.VTEP.IsValid() {
			where = fmt.Sprintf("remote node %s via %s", be.VTEP, esc(be.Via))
		}
		if be.Netns == nil && be.Task != "" {
			where += " (" + esc(be.Task) + ")"
		}
		tp := "?"
		if be.TargetPort != 0 {
			tp = fmt.Sprint(be.TargetPort)
		}
		if be.ServiceTarget != 0 {
			tp += fmt.Sprintf(" (the service's target port is %d)", be.ServiceTarget)
		}
		if be.NotListening {
			tp += " (but nothing listens there)"
		}
		fmt.Fprintf(&b, "    %s:%d %s weight %d -> %s, serves port %s\n", be.IP, be.Port, esc(be.Forward), be.Weight, where, tp)
		for _, h := range be.Hops {
			writeHop(&b, "      ", h)
		}
	}
	writeNotes(&b, p.Notes)
	return writeText(w, &b)
}

// writePathHead writes a path's first line: what it is and its verdict.
func writePathHead(b *strings.Builder, what string, v Verdict) {
	state := "complete"
	switch v {
	case VerdictUnknown:
		state = "UNKNOWN (what could not be checked is marked UNKNOWN below)"
	case VerdictBroken:
		state = "BROKEN"
	}
	fmt.Fprintf(b, "%s: %s\n\n", what, state)
}

func writeNotes(b *strings.Builder, notes []string) {
	for _, n := range notes {
		fmt.Fprintf(b, "\n  note: %s", esc(n))
	}
	if len(notes) > 0 {
		b.WriteString("\n")
	}
}

// WriteDNSPathText writes a lookup's path the way WritePathText writes a
// port's.
func WriteDNSPathText(w io.Writer, p *DNSPath) error {
	var b strings.Builder
	writePathHead(&b, fmt.Sprintf("dns %s %s from %s", esc(p.Proto), esc(orName(p.Name, "(resolver only)")), esc(p.From)), p.Verdict)
	fmt.Fprintf(&b, "  [%s] lookup %s/%s:53\n", esc(p.From), esc(p.Proto), EmbeddedDNS)
	for _, h := range p.Hops {
		writeHop(&b, "  ", h)
	}
	writeNotes(&b, p.Notes)
	return writeText(w, &b)
}

func writeHop(b *strings.Builder, indent string, h Hop) {
	where := fmt.Sprintf("[%s]", esc(h.Netns))
	table, chain := esc(h.Table), esc(h.Chain)
	switch h.Kind {
	case HopDNAT:
		fmt.Fprintf(b, "%s%s %s/%s DNAT -> %s\n", indent, where, table, chain, h.To)
	case HopMark:
		fmt.Fprintf(b, "%s%s %s/%s MARK %#x (%d)\n", indent, where, table, chain, h.Mark, h.Mark)
	case HopIPVS:
		if h.FWMark != 0 {
			fmt.Fprintf(b, "%s%s IPVS FWM %d %s (%s)\n", indent, where, h.FWMark, esc(h.Scheduler), esc(string(h.Impl)))
		} else {
			fmt.Fprintf(b, "%s%s IPVS %s %s (%s)\n", indent, where, h.VIP, esc(h.Scheduler), esc(string(h.Impl)))
		}
	case HopSNAT, HopMasquerade:
		fmt.Fprintf(b, "%s%s %s/%s %s -> %s\n", indent, where, table, chain, strings.ToUpper(string(h.Kind)), h.To)
	case HopRedirect:
		fmt.Fprintf(b, "%s%s %s/%s REDIRECT -> port %d\n", indent, where, table, chain, h.ToPort)
	case HopBreak:
		fmt.Fprintf(b, "%sBREAK at %s: %s\n", indent, where, esc(h.Reason))
		return
	case HopUnknown:
		fmt.Fprintf(b, "%sUNKNOWN past %s: %s\n", indent, where, esc(h.Reason))
		return
	case HopRoute:
		fmt.Fprintf(b, "%s%s route to %s via %s (%s)\n", indent, where, h.To, esc(h.Dev), esc(h.Reason))
		return
	case HopListener:
		fmt.Fprintf(b, "%s%s listener %s: %s\n", indent, where, h.To, esc(h.Reason))
		return
	case HopAnswer:
		fmt.Fprintf(b, "%s%s answer: %s\n", indent, where, esc(h.Reason))
		return
	case HopESP:
		fmt.Fprintf(b, "%s%s ESP spi %s -> %s: %s\n", indent, where, h.SPI, h.To, esc(h.Reason))
		return
	}
	if h.Rule != "" {
		fmt.Fprintf(b, "%s    %s", indent, esc(h.Rule))
		if h.Line > 0 {
			fmt.Fprintf(b, "  (line %d)", h.Line)
		}
		if h.Packets > 0 {
			fmt.Fprintf(b, "  [%d pkts]", h.Packets)
		}
		b.WriteString("\n")
	}
}

// WriteDOT writes the topology as a Graphviz graph: namespaces are
// clusters, links are nodes, veth pairs and bridge ports are edges.
func WriteDOT(w io.Writer, m *Model) error {
	var b strings.Builder
	b.WriteString("graph meshtrace {\n  rankdir=LR;\n  node [shape=box, fontsize=10];\n")
	id := func(ns, link string) string { return fmt.Sprintf("%q", ns+"/"+link) }
	for i, ns := range m.Namespaces {
		fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%q;\n", i, ns.Name+" ["+string(ns.Role)+"]")
		for _, l := range ns.Links {
			if l.Name == "lo" {
				continue
			}
			label := l.Name + "\\n" + orDash(l.Kind)
			for _, a := range l.Addrs {
				if a.Addr().Is4() {
					label += "\\n" + a.String()
				}
			}
			fmt.Fprintf(&b, "    %s [label=\"%s\"];\n", id(ns.Name, l.Name), label)
		}
		b.WriteString("  }\n")
	}
	seen := map[string]bool{}
	var edges []string
	for _, ns := range m.Namespaces {
		for _, l := range ns.Links {
			if l.Master != "" {
				edges = append(edges, fmt.Sprintf("  %s -- %s [style=dashed];\n", id(ns.Name, l.Name), id(ns.Name, l.Master)))
			}
			if p := l.Peer; p != nil && p.Ifname != "" {
				pn := p.Netns
				if pn == "" {
					pn = ns.Name
				}
				a, c := ns.Name+"/"+l.Name, pn+"/"+p.Ifname
				key := min(a, c) + "|" + max(a, c)
				if !seen[key] {
					seen[key] = true
					edges = append(edges, fmt.Sprintf("  %s -- %s;\n", id(ns.Name, l.Name), id(pn, p.Ifname)))
				}
			}
		}
	}
	sort.Strings(edges)
	for _, e := range edges {
		b.WriteString(e)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
