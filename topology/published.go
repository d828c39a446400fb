package topology

import (
	"fmt"
	"net/netip"
	"sort"
)

// Published is one published port of the node as inspect reports it.
type Published struct {
	Proto    string       `json:"proto"`
	Port     int          `json:"port"`
	FWMark   uint32       `json:"fwmark,omitempty"`
	Backends []netip.Addr `json:"backends"`
	Complete bool         `json:"complete"`
	// Unknown is set when the path is neither complete nor broken: part
	// of it depends on data that was not collected.
	Unknown bool `json:"unknown,omitempty"`
}

// PublishedPorts lists the ports the host DNATs (nat rules with a
// destination port and a DNAT target), each with its path's summary.
func PublishedPorts(m *Model) []Published {
	host := m.Lookup("host")
	nat := host.firewallTable("nat")
	if nat == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []Published
	for _, c := range nat.Chains {
		for _, r := range c.All() {
			if r.Target != "DNAT" || r.Proto == nil {
				continue
			}
			port := r.DPort()
			key := fmt.Sprintf("%s/%d", r.Proto.Value, port)
			if port == 0 || seen[key] {
				continue
			}
			seen[key] = true
			pub := Published{Proto: r.Proto.Value, Port: port, Backends: []netip.Addr{}}
			if p, err := FindPath(m, Query{Proto: r.Proto.Value, Port: port}); err == nil {
				pub.Complete, pub.Unknown = p.Complete, p.Verdict == VerdictUnknown
				for _, h := range p.Hops {
					if h.Kind == HopIPVS {
						pub.FWMark = h.FWMark
					}
				}
				for _, b := range p.Backends {
					pub.Backends = append(pub.Backends, b.IP)
				}
			}
			out = append(out, pub)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Proto < out[j].Proto
	})
	return out
}

func (ns *Namespace) firewallTable(name string) *Table {
	if ns == nil {
		return nil
	}
	return ns.Firewall.Table(name)
}

// MarkedPorts are the ports ns's mangle PREROUTING marks by protocol and
// destination port (the ingress sandbox's per-port rule, `-p PROTO -m
// PROTO --dport PORT -j MARK`), in rule order.
func (ns *Namespace) MarkedPorts() []ProtoPort {
	var out []ProtoPort
	for _, r := range ns.firewallTable("mangle").Chain("PREROUTING").rules() {
		if r.Target == "MARK" && r.Proto != nil && r.DPort() != 0 {
			out = append(out, ProtoPort{r.Proto.Value, r.DPort()})
		}
	}
	return out
}

// markedElsewhere finds a namespace whose mangle PREROUTING marks proto/port
// (the ingress sandbox's per-port MARK rule).
func markedElsewhere(m *Model, q Query) *Namespace {
	for _, ns := range m.Namespaces {
		if ns.Role == RoleHost {
			continue
		}
		c := ns.firewallTable("mangle").Chain("PREROUTING")
		if c == nil {
			continue
		}
		for _, r := range c.All() {
			if r.Target != "MARK" || r.Proto == nil || !protoIs(r.Proto.Value, q.Proto) {
				continue
			}
			for _, mm := range r.Matches {
				if o := mm.Opt("dport"); o != nil && !o.Neg && inPorts(o.Ports, q.Port) {
					return ns
				}
			}
		}
	}
	return nil
}

// crossed resets what does not survive a move into another namespace: the
// kernel scrubs skb->mark when a veth hands a packet to another netns, and
// conntrack state is per namespace.
func crossed(pkt *Packet) {
	pkt.OutIface, pkt.DNATed, pkt.IPVS, pkt.Mark = "", false, false, 0
}
