package parse

import (
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// nudBits are the NUD_* states by the word `ip neigh` prints for them.
var nudBits = func() map[string]int {
	m := map[string]int{"NONE": 0}
	for i, n := range topology.NeighStates {
		m[strings.ToUpper(n)] = 1 << i
	}
	return m
}()

// IPNeigh parses `ip neigh show` (collect runs `ip -4 neigh show nud all`,
// which also lists the NOARP entries plain `ip neigh` hides, as the live
// reader does) into neighbours in file order: "IP dev DEV [lladdr MAC]
// [router|proxy|extern_learn|…] STATE…". State is named as the live reader
// names it (topology.NeighStateName: "permanent", "stale", "incomplete,failed";
// "none" when no state is printed); MAC is "" without lladdr.
func IPNeigh(file string, r io.Reader) ([]topology.Neigh, []topology.Unparsed, error) {
	out := make([]topology.Neigh, 0, lineHint(r, 48))
	bad, err := linewise(file, "ip neigh", r, func(_ int, _ string, f []string) string {
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			return "bad address " + quote(f[0])
		}
		n := topology.Neigh{IP: a}
		nud := 0
		for i := 1; i < len(f); i++ {
			switch w := f[i]; w {
			case "dev", "lladdr":
				v, ok := after(f, i)
				if !ok {
					return w + " without a value"
				}
				i++
				if w == "dev" {
					n.Dev = v
					continue
				}
				if m, ok := fastMAC(v); ok {
					n.MAC = m
					continue
				}
				mac, err := net.ParseMAC(v)
				if err != nil {
					// ipip, gre and sit devices' link addresses are
					// IPv4 addresses; the live reader shows their bytes.
					// Nothing else stands in for a MAC: an IPv6 literal
					// ("00::") is neither.
					a, aerr := netip.ParseAddr(v)
					if aerr != nil || !a.Is4() {
						return "bad lladdr " + quote(v)
					}
					mac = net.HardwareAddr(a.AsSlice())
				}
				n.MAC = topology.MACFrom(mac)
			default:
				if b, ok := nudBits[w]; ok {
					nud |= b
				}
			}
		}
		n.State = topology.NeighStateName(nud)
		out = append(out, n)
		return ""
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}
