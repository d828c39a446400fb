package diff

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/meshtrace/meshtrace/topology"
)

// ipvs compares the kernel's IPVS table (when both sides read it) and the
// iptables emulation's services (when both read the firewall): services
// by ipvsadm's name for them, real servers by address, their scheduler,
// persistence, weights and forwarding methods, and IPVS's timeouts.
// Connection counts move with traffic and are not compared (their
// counters are, as counters).
func (d *netnsDiff) ipvs(a, b *topology.Namespace) {
	if d.collected(AreaIPVS, a.IPVS != nil, b.IPVS != nil) {
		va, vb := a.IPVS, b.IPVS
		switch {
		case va.Available != vb.Available:
			d.add(Change{Kind: IPVSChanged, Op: Changed, Object: "IPVS", Field: "available",
				Before: availability(va), After: availability(vb), Summary: "IPVS: " + availability(va) + " -> " + availability(vb)})
		case va.Available:
			d.services("", va.Services, vb.Services)
			d.timeouts(va.Timeouts, vb.Timeouts)
		}
	}
	if a.Firewall != nil && b.Firewall != nil {
		d.services(" (iptables)", emulated(a), emulated(b))
	}
}

func availability(v *topology.IPVS) string {
	if v.Available {
		return "available"
	}
	if v.Reason != "" {
		return "not available (" + v.Reason + ")"
	}
	return "not available"
}

// emulated are the services of the iptables emulation of IPVS.
func emulated(ns *topology.Namespace) []*topology.IPVSService {
	var out []*topology.IPVSService
	for _, s := range ns.LBServices() {
		if s.Impl == topology.LBIptables {
			out = append(out, s)
		}
	}
	return out
}

func (d *netnsDiff) services(impl string, a, b []*topology.IPVSService) {
	prev := map[string]*topology.IPVSService{}
	for _, s := range a {
		prev[topology.IPVSServiceName(s)] = s
	}
	for _, s := range b {
		name := topology.IPVSServiceName(s)
		p := prev[name]
		delete(prev, name)
		obj := name + impl
		if p == nil {
			d.add(Change{Kind: IPVSChanged, Op: Added, Object: obj,
				Summary: fmt.Sprintf("service %s added (%s, %d real servers)", obj, s.Scheduler, len(s.Dests))})
			continue
		}
		d.field(IPVSChanged, obj, "scheduler", p.Scheduler, s.Scheduler)
		d.field(IPVSChanged, obj, "persistent", strconv.Itoa(p.Persistent), strconv.Itoa(s.Persistent))
		d.dests(obj, p.Dests, s.Dests)
	}
	for _, s := range a {
		name := topology.IPVSServiceName(s)
		if prev[name] != nil {
			d.add(Change{Kind: IPVSChanged, Op: Removed, Object: name + impl,
				Summary: fmt.Sprintf("service %s removed (it had %d real servers)", name+impl, len(s.Dests))})
		}
	}
}

func destName(x *topology.IPVSDest) string {
	if x.Port == 0 {
		return x.Addr.String()
	}
	return netip.AddrPortFrom(x.Addr, uint16(x.Port)).String()
}

func weight(x *topology.IPVSDest) string {
	if x.WeightUnknown {
		return "unknown"
	}
	return strconv.Itoa(x.Weight)
}

func (d *netnsDiff) dests(svc string, a, b []*topology.IPVSDest) {
	prev := map[string]*topology.IPVSDest{}
	for _, x := range a {
		prev[destName(x)] = x
	}
	for _, x := range b {
		key := destName(x)
		p := prev[key]
		delete(prev, key)
		obj := svc + " -> " + key
		if p == nil {
			d.add(Change{Kind: IPVSChanged, Op: Added, Object: obj,
				Summary: fmt.Sprintf("%s: real server %s added (weight %s, %s)", svc, key, weight(x), x.Forward)})
			continue
		}
		if !p.WeightUnknown && !x.WeightUnknown {
			d.field(IPVSChanged, obj, "weight", weight(p), weight(x))
		}
		d.field(IPVSChanged, obj, "forward", p.Forward, x.Forward)
	}
	for _, x := range a {
		if key := destName(x); prev[key] != nil {
			d.add(Change{Kind: IPVSChanged, Op: Removed, Object: svc + " -> " + key,
				Summary: fmt.Sprintf("%s: real server %s removed (it had weight %s)", svc, key, weight(x))})
		}
	}
}

func (d *netnsDiff) timeouts(a, b *topology.IPVSTimeouts) {
	if !d.collected(AreaIPVS+" timeouts", a != nil, b != nil) {
		return
	}
	d.field(IPVSChanged, "timeouts", "tcp", strconv.Itoa(a.TCP), strconv.Itoa(b.TCP))
	d.field(IPVSChanged, "timeouts", "tcp_fin", strconv.Itoa(a.TCPFin), strconv.Itoa(b.TCPFin))
	d.field(IPVSChanged, "timeouts", "udp", strconv.Itoa(a.UDP), strconv.Itoa(b.UDP))
}

// field records one attribute of obj that changed: "OBJ: FIELD A -> B".
func (d *netnsDiff) field(kind Kind, obj, field, a, b string) {
	if a == b {
		return
	}
	d.add(Change{Kind: kind, Op: Changed, Object: obj, Field: field, Before: a, After: b,
		Summary: fmt.Sprintf("%s: %s %s -> %s", obj, field, orNone(a), orNone(b))})
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
