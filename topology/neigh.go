package topology

import (
	"fmt"
	"net/netip"
	"strings"
)

// OverlayMAC is the MAC Docker's overlay driver gives an endpoint at an
// IPv4 address unless its container set one: 02:42 and the address's four
// bytes (libnetwork netutils.GenerateMACFromIP, called by the overlay
// driver's CreateEndpoint); every node programs a remote endpoint's
// neighbour and FDB entries with the MAC the endpoint's node gossips, which
// is that one. ok is false for an IPv6 address (random MACs).
func OverlayMAC(a netip.Addr) (MAC, bool) {
	if !a.Is4() {
		return MAC{}, false
	}
	b := a.As4()
	return MACFrom([]byte{0x02, 0x42, b[0], b[1], b[2], b[3]}), true
}

// StaleNeigh is an overlay's permanent neighbour entry whose MAC is not
// the one of the endpoint Docker has at its address.
type StaleNeigh struct {
	Netns string
	Neigh Neigh
	// Want is the endpoint's MAC, Endpoint what Docker says is there.
	Want     MAC
	Endpoint string
	// FDB is the overlay's FDB entry for the neighbour's MAC (nil: none,
	// VXLAN does not know where to send it); WantFDB the one for Want.
	FDB, WantFDB *FDB
}

// StaleNeighbours finds the overlays' permanent neighbour entries (what the
// overlay driver programs for remote endpoints) whose MAC is not the
// endpoint's. The endpoint's MAC is OverlayMAC's, and the endpoint is
// known from Docker (a task of `docker network inspect --verbose`, or an
// endpoint it lists, at the address) or, without that, from the overlay's
// own FDB: an entry for the endpoint's MAC (the driver programs both for
// the same peer) while the neighbour's MAC has none. An address neither
// knows an endpoint at is not judged (a stale backend is the path's
// business). It reads only overlays whose neighbours were collected.
func StaleNeighbours(m *Model) []StaleNeigh {
	var out []StaleNeigh
	for _, ns := range m.Namespaces {
		if ns.Role != RoleOverlay {
			continue
		}
		var known map[netip.Addr]string
		if m.Docker != nil {
			known = dockerEndpoints(m.Docker, ns)
		}
		for _, n := range ns.Neighbours {
			if !strings.Contains(n.State, "permanent") || !n.MAC.IsValid() {
				continue
			}
			want, ok := OverlayMAC(n.IP)
			if !ok || want == n.MAC {
				continue
			}
			s := StaleNeigh{Netns: ns.Name, Neigh: n, Want: want, FDB: fdbOf(ns, n.MAC), WantFDB: fdbOf(ns, want)}
			what, ok := known[n.IP]
			switch {
			case ok:
				s.Endpoint = what
			case s.FDB == nil && s.WantFDB != nil:
				s.Endpoint = fmt.Sprintf("the endpoint the overlay's FDB has behind node %s", s.WantFDB.Dst)
			default:
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

// dockerEndpoints are the endpoints Docker knows on the overlay ns is
// (its network, else every overlay network), by address.
func dockerEndpoints(d *DockerMeta, ns *Namespace) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	for _, n := range d.Networks {
		if n.Driver != "overlay" && !n.Ingress {
			continue
		}
		if ns.Docker != nil && ns.Docker.Network != "" && n.Name != ns.Docker.Network {
			continue
		}
		for _, t := range n.Tasks {
			what := fmt.Sprintf("task %s of service %s on network %s", t.Name, t.Service, n.Name)
			if t.Node.IsValid() {
				what += ", node " + t.Node.String()
			}
			out[t.IP] = what
		}
		for name, a := range n.Endpoints {
			if _, ok := out[a]; !ok {
				out[a] = fmt.Sprintf("endpoint %s on network %s", name, n.Name)
			}
		}
	}
	return out
}

// fdbOf is ns's first FDB entry with a destination for mac, nil when none.
func fdbOf(ns *Namespace, mac MAC) *FDB {
	for i, f := range ns.FDB {
		if f.MAC == mac && f.Dst.IsValid() {
			return &ns.FDB[i]
		}
	}
	return nil
}
