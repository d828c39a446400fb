package topo

import (
	"fmt"
	"sort"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/delta"
)

type rowKind int

const (
	rowGroup rowKind = iota
	rowNS
	rowLink
	rowInfo
)

// row is one line of the list; rows are rebuilt when the model, the
// filter or what is expanded changes, never while drawing.
type row struct {
	kind rowKind
	ns   *topology.Namespace
	link *topology.Link
	text string // group title or info line
	key  string // stable identity across rebuilds
	mark bool   // changed since the previous refresh
}

// groups are the roles in the order operators read a node: the host, the
// sandbox, the overlays, the load balancers, the tasks.
var groups = []struct {
	role  topology.Role
	title string
}{
	{topology.RoleHost, "HOST"},
	{topology.RoleIngressSandbox, "INGRESS SANDBOX"},
	{topology.RoleOverlay, "OVERLAYS"},
	{topology.RoleLB, "LOAD BALANCERS"},
	{topology.RoleTask, "TASKS"},
	{topology.RoleOther, "OTHER"},
}

// buildRows lays out the model: one header per role, one row per
// namespace that matches the filter, and the details of expanded ones.
func buildRows(m *topology.Model, filter string, expanded map[string]bool, ch delta.Set) []row {
	if m == nil {
		return nil
	}
	byRole := map[topology.Role][]*topology.Namespace{}
	total := map[topology.Role]int{}
	known := map[topology.Role]bool{}
	for _, g := range groups {
		known[g.role] = true
	}
	f := strings.ToLower(filter)
	for _, ns := range m.Namespaces {
		role := ns.Role
		if !known[role] {
			role = topology.RoleOther
		}
		total[role]++
		if f == "" || strings.Contains(searchText(ns), f) {
			byRole[role] = append(byRole[role], ns)
		}
	}
	var rows []row
	for _, g := range groups {
		list := byRole[g.role]
		if total[g.role] == 0 || len(list) == 0 {
			continue
		}
		sort.SliceStable(list, func(i, j int) bool { return sortKey(list[i]) < sortKey(list[j]) })
		title := fmt.Sprintf("%s (%d)", g.title, total[g.role])
		if len(list) != total[g.role] {
			title = fmt.Sprintf("%s (%d of %d)", g.title, len(list), total[g.role])
		}
		rows = append(rows, row{kind: rowGroup, text: title, key: "group/" + string(g.role)})
		for _, ns := range list {
			rows = append(rows, row{kind: rowNS, ns: ns, key: ns.Name, mark: ch.Netns(ns.Name)})
			if expanded[ns.Name] {
				rows = append(rows, details(ns, ch)...)
			}
		}
	}
	return rows
}

func sortKey(ns *topology.Namespace) string {
	if d := ns.Docker; d != nil && d.Task != "" {
		return "0" + d.Task + "\x00" + ns.Name
	}
	return "1" + ns.Name
}

// searchText is what the filter matches: names, Docker names, addresses,
// link names.
func searchText(ns *topology.Namespace) string {
	var b strings.Builder
	b.WriteString(ns.Name + " " + string(ns.Role))
	if d := ns.Docker; d != nil {
		b.WriteString(" " + d.Service + " " + d.Task + " " + d.Container + " " + d.Network)
	}
	for _, l := range ns.Links {
		b.WriteString(" " + l.Name)
		for _, a := range l.Addrs {
			b.WriteString(" " + a.String())
		}
	}
	return strings.ToLower(b.String())
}

// details are the rows of an expanded namespace.
func details(ns *topology.Namespace, ch delta.Set) []row {
	var rows []row
	info := func(text string, mark bool) {
		rows = append(rows, row{kind: rowInfo, ns: ns, text: text, key: fmt.Sprintf("%s/#%d", ns.Name, len(rows)), mark: mark})
	}
	if d := ns.Docker; d != nil {
		info(dockerLine(d), false)
	}
	if ns.Links == nil {
		info("links: not collected", false)
	}
	for _, l := range ns.Links {
		if l.Name == "lo" {
			continue
		}
		rows = append(rows, row{kind: rowLink, ns: ns, link: l, key: ns.Name + "/" + l.Name})
	}
	for _, f := range ns.FDB {
		if f.Dst.IsValid() {
			info(fmt.Sprintf("fdb %s dev %s -> VTEP %s (%s)", f.MAC, f.Dev, f.Dst, f.State), false)
		}
	}
	info(firewallLine(ns), false)
	if ns.IPVS != nil && !ns.IPVS.Available {
		info("ipvs: unavailable: "+ns.IPVS.Reason, false)
	}
	for _, svc := range ns.LBServices() {
		info(lbLine(ns, svc, ch))
	}
	for _, e := range ns.Errors {
		info("error: "+e, true)
	}
	return rows
}

func dockerLine(d *topology.NetnsMeta) string {
	var parts []string
	for _, kv := range [][2]string{{"service", d.Service}, {"task", d.Task}, {"container", d.Container}, {"network", d.Network}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	return "docker: " + strings.Join(parts, ", ")
}

func firewallLine(ns *topology.Namespace) string {
	fw := ns.Firewall
	if fw == nil {
		return "firewall: not collected"
	}
	var parts []string
	for _, t := range fw.Tables {
		n := 0
		for _, c := range t.Chains {
			n += c.Len()
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", t.Name, n))
		}
	}
	s := fmt.Sprintf("firewall: %d rules", fw.RuleCount())
	if fw.Backend != "" {
		s = fmt.Sprintf("firewall (%s): %d rules", fw.Backend, fw.RuleCount())
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	if len(fw.Unparsed) > 0 {
		s += fmt.Sprintf(", %d not understood", len(fw.Unparsed))
	}
	return s
}

func lbLine(ns *topology.Namespace, svc *topology.IPVSService, ch delta.Set) (string, bool) {
	name := fmt.Sprintf("FWM %d", svc.FWMark)
	if svc.FWMark == 0 {
		name = fmt.Sprintf("%s %s:%d", svc.Proto, svc.Addr, svc.Port)
	}
	var ds []string
	mark := false
	for _, d := range svc.Dests {
		s := fmt.Sprintf("%s:%d w%d", d.Addr, d.Port, d.Weight)
		if d.WeightUnknown {
			s = fmt.Sprintf("%s:%d w?", d.Addr, d.Port)
		}
		if c, ok := ch.Dest(ns.Name, delta.SvcKey(svc), delta.DestKey(d)); ok && c.Highlight() {
			s += "*"
			mark = true
		}
		ds = append(ds, s)
	}
	if len(ds) == 0 {
		ds = []string{"no real servers"}
	}
	return fmt.Sprintf("lb %s %s (%s) -> %s", name, svc.Scheduler, svc.Impl, strings.Join(ds, ", ")), mark
}
