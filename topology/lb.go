package topology

import (
	"net/netip"
	"sort"
)

// LBServices returns the namespace's load-balancing services: the kernel's
// IPVS services, and the services of the iptables emulation recognised from
// its rules (Impl "iptables"). Emulation is recognised by shape, not by
// comment: nat rules that match a firewall mark and DNAT to an address
// without changing the port, one per backend, usually with `-m statistic`.
func (ns *Namespace) LBServices() []*IPVSService {
	var out []*IPVSService
	if ns.IPVS != nil {
		out = append(out, ns.IPVS.Services...)
	}
	return append(out, emulatedServices(ns)...)
}

// emulatedServices groups mark-matching DNAT rules of the nat table by mark.
func emulatedServices(ns *Namespace) []*IPVSService {
	nat := ns.Firewall.Table("nat")
	if nat == nil {
		return nil
	}
	byMark := map[uint32]*IPVSService{}
	var order []uint32
	for _, c := range nat.Chains {
		for _, r := range c.All() {
			mark, ok := emulationRule(r)
			if !ok {
				continue
			}
			to, port := r.NAT.Addr, int(r.NAT.Port)
			s := byMark[mark]
			if s == nil {
				s = &IPVSService{FWMark: mark, Scheduler: "rr", Impl: LBIptables}
				byMark[mark] = s
				order = append(order, mark)
			}
			s.Rules = append(s.Rules, r.Text)
			dup := false
			for _, d := range s.Dests {
				if d.Addr == to && d.Port == port {
					dup = true // the same backend in PREROUTING and OUTPUT
				}
			}
			if !dup {
				var st *IPVSStats
				if r.HasCounters {
					st = &IPVSStats{Conns: r.Packets, InPkts: r.Packets, InBytes: r.Bytes}
				}
				s.Dests = append(s.Dests, &IPVSDest{Addr: to, Port: port, Forward: "masq", Weight: 1, Stats: st, Rule: r.Text})
			}
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	out := make([]*IPVSService, 0, len(order))
	for _, m := range order {
		out = append(out, byMark[m])
	}
	return out
}

// emulationRule reports whether r is one backend rule of an emulated FWM
// service, and its mark: a DNAT with an address only, matching `-m mark
// --mark M` and nothing about addresses or ports.
func emulationRule(r *Rule) (uint32, bool) {
	if r.Target != "DNAT" || r.Src != nil || r.Dst != nil || r.Proto != nil {
		return 0, false
	}
	if r.NAT == nil || !r.NAT.Addr.IsValid() || r.NAT.Port != 0 || r.Undecidable != "" {
		return 0, false
	}
	var mark uint32
	found := false
	for _, m := range r.Matches {
		switch m.Name {
		case "mark":
			o := m.Opt("mark")
			if o == nil || o.Mark == nil || o.Neg {
				return 0, false
			}
			mark, found = o.Mark.Value, true
		case "statistic", "comment":
		default:
			return 0, false
		}
	}
	return mark, found
}

// EmulationMark reports whether r is one backend rule of the iptables
// emulation of an IPVS firewall-mark service, the shape LBServices
// recognises, and the service's mark: what code outside topology asks
// instead of reading the rule's options.
func EmulationMark(r *Rule) (uint32, bool) { return emulationRule(r) }

// isEmulationRule reports a backend rule of the iptables emulation of IPVS:
// path evaluation stops there and models the whole service.
func isEmulationRule(r *Rule) bool {
	_, ok := emulationRule(r)
	return ok
}

// RouteOut returns the link a packet to dst leaves by: a connected prefix
// first, then the routing table's best match, then the default route.
func (ns *Namespace) RouteOut(dst netip.Addr) *Link {
	best, bits := (*Link)(nil), -1
	for _, l := range ns.Links {
		if l.Kind == "loopback" || l.Name == "lo" {
			continue
		}
		for _, p := range l.Addrs {
			if p.Contains(dst) && p.Bits() > bits && p.Bits() < p.Addr().BitLen() {
				best, bits = l, p.Bits()
			}
		}
	}
	if best != nil {
		return best
	}
	for _, r := range ns.Routes {
		if r.IsDefault() {
			continue
		}
		if p := r.Dst; p.Contains(dst) && p.Bits() > bits {
			if l := ns.Link(r.Dev); l != nil {
				best, bits = l, p.Bits()
			}
		}
	}
	if best != nil {
		return best
	}
	for _, r := range ns.Routes {
		if r.IsDefault() {
			return ns.Link(r.Dev)
		}
	}
	return nil
}
