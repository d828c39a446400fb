package inspect

import (
	"sort"

	"github.com/meshtrace/meshtrace/topology"
)

// What the live reader and the bundle reader both decide about the state
// they read, so that both say the same of the same namespace.

// keepFDB says whether the model keeps an FDB entry of link l: the unicast
// entries of bridge ports, bridges and VXLAN devices (the per-device
// multicast entries say nothing about forwarding). Dst, the remote VTEP,
// is what the kernel gives (NDA_DST, which only VXLAN devices have), so it
// does not depend on l's kind, which plain `ip addr` in a bundle leaves
// unknown.
func keepFDB(e topology.FDB, l *topology.Link) bool {
	mac := e.MAC.HardwareAddr()
	return l != nil && len(mac) > 0 && mac[0]&1 == 0 && (l.Master != "" || l.Kind == "vxlan" || l.Kind == "bridge")
}

// sortSockets orders listening sockets by protocol, address and port.
func sortSockets(s []topology.Socket) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Proto != s[j].Proto {
			return s[i].Proto < s[j].Proto
		}
		if c := s[i].Addr.Compare(s[j].Addr); c != 0 {
			return c < 0
		}
		return s[i].Port < s[j].Port
	})
}
