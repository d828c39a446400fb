package parse

import (
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// fdbValued are the words of a `bridge fdb` line followed by a value.
var fdbValued = map[string]bool{"dev": true, "dst": true, "vlan": true, "port": true, "vni": true, "src_vni": true,
	"via": true, "nhid": true, "master": true, "link-netnsid": true, "used": true, "updated": true}

// BridgeFDB parses `bridge fdb show` into entries in file order: "MAC dev
// DEV [dst VTEP] [vlan N] [self] [master BR] … [STATE]", with Dst the
// remote VTEP of a VXLAN entry. Every entry is kept (multicast ones, those
// of devices that are no bridge port): which of them the model keeps
// depends on the links, see the bundle reader.
//
// bridge prints one word for the NUD_* state (fdb.c state_n2a): permanent
// (NUD_PERMANENT), static (NUD_NOARP), stale, nothing for NUD_REACHABLE, or
// state=0xN. State is named as the live reader names it: "permanent",
// "noarp", "stale", "reachable", or the bits of 0xN.
func BridgeFDB(file string, r io.Reader) ([]topology.FDB, []topology.Unparsed, error) {
	out := make([]topology.FDB, 0, lineHint(r, 48))
	bad, err := linewise(file, "bridge fdb", r, func(_ int, _ string, f []string) string {
		mac, ok := fastMAC(f[0])
		var err error
		if !ok {
			mac, err = topology.ParseMAC(f[0])
		}
		if err != nil || len(mac.HardwareAddr()) != 6 {
			// A bridge (and VXLAN) FDB is keyed by Ethernet MACs: a
			// shorter link-layer address (a tunnel's) is not one.
			return "bad MAC " + quote(f[0])
		}
		e := topology.FDB{MAC: mac, State: "reachable"}
		for i := 1; i < len(f); i++ {
			w := f[i]
			switch {
			case fdbValued[w]:
				v, ok := after(f, i)
				if !ok {
					return w + " without a value"
				}
				i++
				switch w {
				case "dev":
					e.Dev = v
				case "dst":
					a, err := netip.ParseAddr(v)
					if err != nil {
						return "bad dst " + quote(v)
					}
					e.Dst = a
				}
			case w == "permanent":
				e.State = "permanent"
			case w == "static":
				e.State = "noarp"
			case w == "stale":
				e.State = "stale"
			case strings.HasPrefix(w, "state="):
				n, err := strconv.ParseUint(w[len("state="):], 0, 16)
				if err != nil {
					return "bad " + quote(w)
				}
				e.State = topology.NeighStateName(int(n))
			}
		}
		if e.Dev == "" {
			return "no dev"
		}
		out = append(out, e)
		return ""
	})
	if err != nil {
		return nil, nil, err
	}
	return out, bad, nil
}
