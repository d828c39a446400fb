package ports

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// Entry is one thing whose path can be drawn: a published port, or a
// service VIP called from a task (east-west).
type Entry struct {
	// Query is what topology.FindPath is asked.
	Query topology.Query
	// Service is the Docker service's name when known.
	Service string
	FWMark  uint32
	// Backends are the real servers' addresses.
	Backends []string
	Complete bool
	// Unknown: part of the path depends on data that was not collected.
	Unknown bool
	// Clients are the namespaces an east-west call can start from (the
	// first is in Query.Netns); empty for published ports. Labels names
	// them by Docker task when known.
	Clients []string
	Labels  map[string]string
}

// From names the namespace an east-west call starts from.
func (e Entry) From() string {
	if l := e.Labels[e.Query.Netns]; l != "" {
		return l
	}
	return e.Query.Netns
}

// VIP reports whether the entry is an east-west service VIP.
func (e Entry) VIP() bool { return e.Query.VIP.IsValid() }

// Title names the entry: "tcp/8080" or "VIP 10.0.1.5".
func (e Entry) Title() string {
	if e.VIP() {
		return "VIP " + e.Query.VIP.String()
	}
	return fmt.Sprintf("%s/%d", e.Query.Proto, e.Query.Port)
}

// Build lists a model's published ports and service VIPs with their path
// summaries. It evaluates every path: call it off the UI goroutine.
func Build(m *topology.Model) []Entry {
	if m == nil {
		return nil
	}
	var out []Entry
	for _, p := range topology.PublishedPorts(m) {
		e := Entry{Query: topology.Query{Proto: p.Proto, Port: p.Port}, FWMark: p.FWMark, Backends: p.Backends, Complete: p.Complete, Unknown: p.Unknown}
		e.Service = serviceForPort(m, p.Proto, p.Port)
		out = append(out, e)
	}
	for _, v := range vips(m) {
		clients := clientsOf(m, v)
		if len(clients) == 0 {
			continue
		}
		e := Entry{Query: topology.Query{Proto: "tcp", VIP: v, Netns: clients[0]}, Clients: clients, Service: serviceForVIP(m, v), Labels: map[string]string{}}
		for _, c := range clients {
			if ns := m.Lookup(c); ns != nil && ns.Docker != nil && ns.Docker.Task != "" {
				e.Labels[c] = ns.Docker.Task
			}
		}
		if p, err := topology.FindPath(m, e.Query); err == nil {
			e.Complete, e.Unknown = p.Complete, p.Verdict == topology.VerdictUnknown
			for _, h := range p.Hops {
				if h.Kind == topology.HopIPVS {
					e.FWMark = h.FWMark
				}
			}
			for _, b := range p.Backends {
				e.Backends = append(e.Backends, b.IP)
			}
		}
		out = append(out, e)
	}
	return out
}

// vips are the addresses mangle rules mark by destination (-d X/32 -j
// MARK, the per-service VIP rules), and the VIPs Docker reports.
func vips(m *topology.Model) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) {
		// the ingress network's VIPs live in the ingress sandbox and
		// serve the routing mesh, not calls between services
		if o := m.Owner(a); o != nil && o.Role == topology.RoleIngressSandbox {
			return
		}
		if a.IsValid() && a.Is4() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, ns := range m.Namespaces {
		mangle := ns.Firewall.Table("mangle")
		if mangle == nil {
			continue
		}
		for _, c := range mangle.Chains {
			for _, r := range c.Rules {
				if r.Target != "MARK" || r.Dst == nil || r.Dst.Neg {
					continue
				}
				if p, err := netip.ParsePrefix(r.Dst.Value); err == nil && p.Bits() == 32 {
					add(p.Addr())
				}
			}
		}
	}
	if m.Docker != nil {
		for _, s := range m.Docker.Services {
			for _, v := range sortedValues(s.VIPs) {
				if p, err := netip.ParsePrefix(v); err == nil {
					add(p.Addr())
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// clientsOf are the task namespaces on the VIP's subnet (that do not own
// it), tasks of other services first.
func clientsOf(m *topology.Model, vip netip.Addr) []string {
	svc := serviceForVIP(m, vip)
	var own, other []string
	for _, ns := range m.Namespaces {
		if ns.Role != topology.RoleTask {
			continue
		}
		if _, owns := ns.Owns(vip); owns {
			continue
		}
		if !onSubnet(ns, vip) {
			continue
		}
		if svc != "" && ns.Docker != nil && ns.Docker.Service == svc {
			own = append(own, ns.Name)
		} else {
			other = append(other, ns.Name)
		}
	}
	return append(other, own...)
}

func onSubnet(ns *topology.Namespace, a netip.Addr) bool {
	for _, l := range ns.Links {
		for _, p := range l.Addrs {
			if p.Bits() < 32 && p.Masked().Contains(a) {
				return true
			}
		}
	}
	return false
}

func serviceForPort(m *topology.Model, proto string, port int) string {
	if m.Docker == nil {
		return ""
	}
	for _, s := range m.Docker.Services {
		for _, p := range s.Ports {
			if p.Published == port && strings.EqualFold(p.Proto, proto) {
				return s.Name
			}
		}
	}
	return ""
}

func serviceForVIP(m *topology.Model, vip netip.Addr) string {
	if m.Docker == nil {
		return ""
	}
	for _, s := range m.Docker.Services {
		for _, v := range s.VIPs {
			if p, err := netip.ParsePrefix(v); err == nil && p.Addr() == vip {
				return s.Name
			}
		}
	}
	return ""
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
