package topology

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// CounterKind says what kind of kernel counter a CounterDelta is.
type CounterKind string

// Counter kinds, in the order DiffCounters lists them within a namespace.
const (
	CounterRule        CounterKind = "rule"         // an iptables rule's packets (Bytes beside)
	CounterPolicy      CounterKind = "policy"       // a built-in chain's policy: the packets it decided
	CounterSNMP        CounterKind = "snmp"         // Counters.SNMP
	CounterConntrack   CounterKind = "conntrack"    // Counters.Conntrack
	CounterLink        CounterKind = "link"         // Counters.Links
	CounterIPVSService CounterKind = "ipvs-service" // an IPVS service's stats
	CounterIPVSDest    CounterKind = "ipvs-dest"    // an IPVS destination's stats
	CounterXfrmSA      CounterKind = "xfrm-sa"      // an IPsec SA's stats
)

var counterKindOrder = map[CounterKind]int{CounterRule: 0, CounterPolicy: 1, CounterSNMP: 2, CounterConntrack: 3,
	CounterLink: 4, CounterIPVSService: 5, CounterIPVSDest: 6, CounterXfrmSA: 7}

// CounterDelta is one counter that moved between two snapshots of a
// namespace.
type CounterDelta struct {
	Netns string      `json:"netns"`
	Kind  CounterKind `json:"kind"`
	// Object is what the counter belongs to: a rule's "TABLE CHAIN #N"
	// (its position in the later snapshot), a chain "TABLE CHAIN", a link,
	// an IPVS service ("FWM 256", "TCP 10.0.0.2:80") or destination
	// (its service, " -> ", its address), an SA ("esp 0x… SRC->DST");
	// "" for SNMP and conntrack counters.
	Object string `json:"object,omitempty"`
	// Backend is the iptables backend of a rule or policy counter
	// (Firewall.Backend; "" when not known).
	Backend string `json:"backend,omitempty"`
	// Text is the rule as iptables-save prints it, or the chain's policy
	// (ACCEPT, DROP).
	Text string `json:"text,omitempty"`
	// Counter names the counter: "IpOutNoRoutes", "insert_failed",
	// "rx_dropped", "packets" (rules, policies, SAs), "conns", "in_pkts",
	// "out_pkts" (IPVS), "integrity_failed", …
	Counter string `json:"counter"`
	Before  uint64 `json:"before"`
	After   uint64 `json:"after"`
	// Delta is After - Before. A counter that went back (Reset: a link or
	// rule made anew, a module reloaded) has a negative one.
	Delta int64 `json:"delta"`
	Reset bool  `json:"reset,omitempty"`
	// Bytes is the change of the byte counter kept beside a packet
	// counter (rules, policies, IPVS in_pkts/out_pkts, SAs).
	Bytes int64 `json:"bytes,omitempty"`
}

// DiffCounters returns every counter that moved between two snapshots of
// the same node, namespace by namespace (matched by name, in after's
// order; a namespace, link, rule, service or SA in only one of them has
// nothing to compare and is left out; a counter missing from before in a
// group read there is taken as 0). Rules are matched by backend, table,
// chain and text (the n-th rule of a text with the n-th), so rules added
// or removed between the snapshots do not shift the others. It is pure.
func DiffCounters(before, after *Model) []CounterDelta {
	if before == nil || after == nil {
		return nil
	}
	var out []CounterDelta
	for _, a := range after.Namespaces {
		if b := before.Lookup(a.Name); b != nil {
			out = append(out, DiffNamespaceCounters(b, a)...)
		}
	}
	return out
}

// DiffNamespaceCounters is DiffCounters for one namespace's two snapshots;
// the deltas carry after's name.
func DiffNamespaceCounters(before, after *Namespace) []CounterDelta {
	d := &counterDiff{netns: after.Name}
	d.firewall(before.Firewall, after.Firewall)
	d.firewall(before.OtherFirewall, after.OtherFirewall)
	// A counter missing from a group that was read before is 0 there: the
	// kernel and iproute2 leave some out until they move (IcmpMsg
	// OutTypeN, rx_nohandler).
	if b, a := before.Counters, after.Counters; b != nil && a != nil {
		if b.SNMP != nil {
			for k, v := range a.SNMP {
				d.add(CounterDelta{Kind: CounterSNMP, Counter: k}, uint64(b.SNMP[k]), uint64(v), 0, 0)
			}
		}
		if b.Conntrack != nil {
			for k, v := range a.Conntrack {
				if k != "entries" { // the table's size, not a count of events
					d.add(CounterDelta{Kind: CounterConntrack, Counter: k}, b.Conntrack[k], v, 0, 0)
				}
			}
		}
		for link, cs := range a.Links {
			if bl, ok := b.Links[link]; ok {
				for k, v := range cs {
					d.add(CounterDelta{Kind: CounterLink, Object: link, Counter: k}, bl[k], v, 0, 0)
				}
			}
		}
	}
	d.ipvs(before.IPVS, after.IPVS)
	d.xfrm(before.Xfrm, after.Xfrm)
	sort.SliceStable(d.out, func(i, j int) bool {
		x, y := d.out[i], d.out[j]
		if x.Kind != y.Kind {
			return counterKindOrder[x.Kind] < counterKindOrder[y.Kind]
		}
		if x.Kind == CounterRule || x.Kind == CounterPolicy {
			return false // chain order, as added
		}
		if x.Object != y.Object {
			return x.Object < y.Object
		}
		return x.Counter < y.Counter
	})
	return d.out
}

type counterDiff struct {
	netns string
	out   []CounterDelta
}

// add records c when the counter moved; bytes are the byte counter beside
// it (0, 0 when none).
func (d *counterDiff) add(c CounterDelta, before, after, bytesBefore, bytesAfter uint64) {
	if before == after && bytesBefore == bytesAfter {
		return
	}
	c.Netns = d.netns
	c.Before, c.After = before, after
	c.Delta = int64(after - before)
	c.Reset = after < before
	c.Bytes = int64(bytesAfter - bytesBefore)
	d.out = append(d.out, c)
}

func (d *counterDiff) firewall(before, after *Firewall) {
	if before == nil || after == nil || before.Backend != after.Backend {
		return
	}
	for _, at := range after.Tables {
		bt := before.Table(at.Name)
		if bt == nil {
			continue
		}
		for _, ac := range at.Chains {
			bc := bt.Chain(ac.Name)
			if bc == nil {
				continue
			}
			obj := at.Name + " " + ac.Name
			if ac.Policy != "-" && bc.Policy != "-" {
				d.add(CounterDelta{Kind: CounterPolicy, Object: obj, Backend: string(after.Backend), Text: ac.Policy, Counter: "packets"},
					bc.Packets, ac.Packets, bc.Bytes, ac.Bytes)
			}
			// The n-th rule of a text in before is the n-th of that text in after.
			prev := map[string][]*Rule{}
			for _, r := range bc.All() {
				prev[r.Text] = append(prev[r.Text], r)
			}
			seen := map[string]int{}
			for i, r := range ac.All() {
				n := seen[r.Text]
				seen[r.Text]++
				if n >= len(prev[r.Text]) {
					continue
				}
				b := prev[r.Text][n]
				if !b.HasCounters || !r.HasCounters { // a listing without counters (iptables-save without -c) has nothing to compare
					continue
				}
				d.add(CounterDelta{Kind: CounterRule, Object: fmt.Sprintf("%s #%d", obj, i+1), Backend: string(after.Backend),
					Text: r.Text, Counter: "packets"}, b.Packets, r.Packets, b.Bytes, r.Bytes)
			}
		}
	}
}

// IPVSServiceName names a service as ipvsadm -Ln does ("FWM 256", "TCP
// 10.0.0.2:80"): the key of a service in DiffCounters and package diff.
func IPVSServiceName(s *IPVSService) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("FWM %d", s.FWMark)
	}
	return strings.ToUpper(s.Proto) + " " + netip.AddrPortFrom(s.Addr, uint16(s.Port)).String()
}

func (d *counterDiff) ipvs(before, after *IPVS) {
	if before == nil || after == nil {
		return
	}
	prev := map[string]*IPVSService{}
	for _, s := range before.Services {
		prev[IPVSServiceName(s)] = s
	}
	for _, s := range after.Services {
		name := IPVSServiceName(s)
		b := prev[name]
		if b == nil {
			continue
		}
		d.ipvsStats(CounterIPVSService, name, b.Stats, s.Stats)
		dests := map[string]*IPVSDest{}
		for _, x := range b.Dests {
			dests[netip.AddrPortFrom(x.Addr, uint16(x.Port)).String()] = x
		}
		for _, x := range s.Dests {
			key := netip.AddrPortFrom(x.Addr, uint16(x.Port)).String()
			if y := dests[key]; y != nil {
				d.ipvsStats(CounterIPVSDest, name+" -> "+key, y.Stats, x.Stats)
			}
		}
	}
}

func (d *counterDiff) ipvsStats(kind CounterKind, obj string, before, after *IPVSStats) {
	if before == nil || after == nil {
		return
	}
	d.add(CounterDelta{Kind: kind, Object: obj, Counter: "conns"}, before.Conns, after.Conns, 0, 0)
	d.add(CounterDelta{Kind: kind, Object: obj, Counter: "in_pkts"}, before.InPkts, after.InPkts, before.InBytes, after.InBytes)
	d.add(CounterDelta{Kind: kind, Object: obj, Counter: "out_pkts"}, before.OutPkts, after.OutPkts, before.OutBytes, after.OutBytes)
}

func (d *counterDiff) xfrm(before, after *Xfrm) {
	if before == nil || after == nil {
		return
	}
	type key struct {
		src, dst netip.Addr
		proto    XfrmProto
		spi      SPI
	}
	prev := map[key]*XfrmSAStats{}
	for _, s := range before.States {
		prev[key{s.Src, s.Dst, s.Proto, s.SPI}] = s.Stats
	}
	for _, s := range after.States {
		b := prev[key{s.Src, s.Dst, s.Proto, s.SPI}]
		if b == nil || s.Stats == nil {
			continue
		}
		obj := fmt.Sprintf("%s %s %s->%s", s.Proto, s.SPI, s.Src, s.Dst)
		a := s.Stats
		d.add(CounterDelta{Kind: CounterXfrmSA, Object: obj, Counter: "packets"}, b.Packets, a.Packets, b.Bytes, a.Bytes)
		d.add(CounterDelta{Kind: CounterXfrmSA, Object: obj, Counter: "out_of_window"}, uint64(b.OutOfWindow), uint64(a.OutOfWindow), 0, 0)
		d.add(CounterDelta{Kind: CounterXfrmSA, Object: obj, Counter: "replay"}, uint64(b.Replay), uint64(a.Replay), 0, 0)
		d.add(CounterDelta{Kind: CounterXfrmSA, Object: obj, Counter: "integrity_failed"}, uint64(b.IntegrityFailed), uint64(a.IntegrityFailed), 0, 0)
	}
}
