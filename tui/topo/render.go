package topo

import (
	"fmt"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/ui"
)

// line renders one row at width w; wide screens get more columns.
func (m Model) line(r row, selected bool) string {
	cur := "  "
	if selected {
		cur = ui.MarkCursor + " "
	}
	chg := " "
	if r.mark {
		chg = ui.MarkChanged
	}
	var s string
	switch r.kind {
	case rowGroup:
		return m.theme.Header.Render(ui.Fit(cur+r.text, m.w))
	case rowNS:
		s = cur + chg + m.nsLine(r.ns)
	case rowLink:
		s = cur + chg + "    " + linkLine(r.ns, r.link, m.w >= 120)
	default:
		s = cur + chg + "    " + r.text
	}
	s = ui.Fit(s, m.w)
	switch {
	case selected:
		return m.theme.Cursor.Render(s)
	case r.mark:
		return m.theme.Changed.Render(s)
	case r.kind == rowInfo && strings.HasPrefix(r.text, "error:"):
		return m.theme.Bad.Render(s)
	}
	return s
}

func (m Model) nsLine(ns *topology.Namespace) string {
	open := "+"
	if m.expanded[ns.Name] {
		open = "-"
	}
	nameW := 14
	if m.w >= 120 {
		nameW = 20
	}
	label := ""
	if d := ns.Docker; d != nil {
		switch {
		case d.Task != "":
			label = d.Task
		case d.Service != "":
			label = d.Service
		case d.Network != "":
			label = "net " + d.Network
		}
	}
	labelW := 12
	if m.w >= 120 {
		labelW = 24
	}
	s := fmt.Sprintf("[%s] %s %s %s", open, ui.Fit(ns.Name, nameW), ui.Fit(label, labelW), summary(ns, m.w >= 120))
	return s
}

// summary is a namespace's one-line digest: addresses, links, rules, LB.
func summary(ns *topology.Namespace, wide bool) string {
	var parts []string
	var addrs []string
	links := 0
	for _, l := range ns.Links {
		if l.Name == "lo" {
			continue
		}
		links++
		for _, a := range l.Addrs {
			if a.Addr().Is4() {
				addrs = append(addrs, a.String())
			}
		}
	}
	if len(addrs) > 2 && !wide {
		addrs = append(addrs[:2], "…")
	}
	if len(addrs) > 0 && wide {
		parts = append(parts, strings.Join(addrs, " "))
	}
	parts = append(parts, fmt.Sprintf("%d links", links))
	if ns.Firewall != nil {
		parts = append(parts, fmt.Sprintf("%d rules", ns.Firewall.RuleCount()))
	}

	for _, svc := range ns.LBServices() {
		if svc.FWMark != 0 {
			parts = append(parts, fmt.Sprintf("FWM %d→%d", svc.FWMark, len(svc.Dests)))
		} else {
			parts = append(parts, fmt.Sprintf("%s:%d→%d", svc.Addr, svc.Port, len(svc.Dests)))
		}
	}
	if len(ns.Errors) > 0 {
		parts = append(parts, fmt.Sprintf("%s %d errors", ui.MarkLost, len(ns.Errors)))
	}
	if len(addrs) > 0 && !wide {
		// narrow: counts first, the addresses take what is left
		parts = append(parts, strings.Join(addrs, " "))
	}
	return strings.Join(parts, "  ")
}

// linkLine shows a link with what it connects to.
func linkLine(ns *topology.Namespace, l *topology.Link, wide bool) string {
	s := fmt.Sprintf("%-15s %-7s mtu %-5d", l.Name, orDash(l.Kind), l.MTU)
	if !wide {
		s = fmt.Sprintf("%-12s %-6s %4d", l.Name, orDash(l.Kind), l.MTU)
	}
	if !l.Up {
		s += " DOWN"
	}
	for _, a := range l.Addrs {
		if a.Addr().Is4() {
			s += " " + a.String()
		}
	}
	if l.Master != "" && wide {
		s += " master " + l.Master
	} else if l.Master != "" {
		s += " @" + l.Master
	}
	if l.Kind == "bridge" {
		var ports []string
		for _, o := range ns.Links {
			if o.Master == l.Name {
				ports = append(ports, o.Name)
			}
		}
		s += " ports: " + orDash(strings.Join(ports, ", "))
	}
	if p := l.Peer; p != nil {
		switch {
		case p.Netns != "" && p.Ifname != "":
			s += " ⇄ " + p.Netns + "/" + p.Ifname + " [p]"
		case p.Netns != "":
			s += fmt.Sprintf(" ⇄ %s/if%d [p]", p.Netns, p.Index)
		case p.NetnsID >= 0:
			s += fmt.Sprintf(" ⇄ if%d in netnsid %d (unresolved)", p.Index, p.NetnsID)
		case p.Ifname != "":
			s += " ⇄ " + p.Ifname + " [p]"
		default:
			s += fmt.Sprintf(" ⇄ if%d", p.Index)
		}
	}
	if v := l.VXLAN; v != nil {
		s += fmt.Sprintf(" vxlan id %d port %d", v.ID, v.Port)
		if v.Local.IsValid() {
			s += " local " + v.Local.String()
		}
		if v.Group.IsValid() {
			s += " group " + v.Group.String()
		}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
