package topology

import "fmt"

// settle decides the path's verdict from its hops, the one rule path and
// doctor both follow: a break anywhere (the main hops or a backend's) is
// broken, whatever else is unknown; else an unknown hop anywhere is
// unknown; else the path is complete when it reached its backends.
func (p *Path) settle() *Path {
	broken, unknown := hasKindHop(p.Hops, HopBreak), hasKindHop(p.Hops, HopUnknown)
	for _, b := range p.Backends {
		broken = broken || hasKindHop(b.Hops, HopBreak)
		unknown = unknown || hasKindHop(b.Hops, HopUnknown)
	}
	switch {
	case broken:
		p.Verdict = VerdictBroken
	case unknown:
		p.Verdict = VerdictUnknown
	case p.Complete:
		p.Verdict = VerdictComplete
	default:
		p.Verdict = VerdictBroken
	}
	p.Complete = p.Verdict == VerdictComplete
	return p
}

func hasKindHop(hs []Hop, kind string) bool {
	for _, h := range hs {
		if h.Kind == kind {
			return true
		}
	}
	return false
}

func hasBreak(hs []Hop) bool { return hasKindHop(hs, HopBreak) }

// gapIn reports whether the walk already recorded that ns's data is
// missing.
func (w *walker) gapIn(ns *Namespace) bool {
	for _, h := range w.p.Hops {
		if h.Kind == HopUnknown && h.Netns == ns.Name {
			return true
		}
	}
	return false
}

// Unknowns says, one line each, what part of the path could not be checked
// and why, e.g. "tcp/8080: unknown past ingress_sbox: its iptables-save was
// not collected". Path and doctor print the same lines.
func (p *Path) Unknowns() []string {
	what := fmt.Sprintf("%s/%d", p.Proto, p.Port)
	if p.VIP != "" {
		what = fmt.Sprintf("%s VIP %s port %d from %s", p.Proto, p.VIP, p.Port, p.From)
	}
	var out []string
	add := func(s string) {
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	for _, h := range p.Hops {
		if h.Kind == HopUnknown {
			add(fmt.Sprintf("%s: unknown past %s: %s", what, h.Netns, h.Reason))
		}
	}
	for _, b := range p.Backends {
		for _, h := range b.Hops {
			if h.Kind == HopUnknown {
				add(fmt.Sprintf("%s: unknown past %s for backend %s: %s", what, h.Netns, b.IP, h.Reason))
			}
		}
	}
	return out
}

// publishedElsewhere says why proto/port counts as published although the
// host does not DNAT it, "" when nothing says so: the ingress sandbox
// still marks it, or Docker publishes it in ingress mode.
func publishedElsewhere(m *Model, q Query) string {
	if ns := markedElsewhere(m, q); ns != nil {
		return "is marked in " + ns.Name
	}
	if m.Docker == nil {
		return ""
	}
	for _, s := range m.Docker.Services {
		for _, pt := range s.Ports {
			if pt.Published == q.Port && pt.Proto == q.Proto && (pt.Mode == "" || pt.Mode == "ingress") {
				return fmt.Sprintf("is published by Docker (service %s, target port %d)", s.Name, pt.Target)
			}
		}
	}
	return ""
}
