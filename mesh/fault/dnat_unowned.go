package fault

import "net/netip"

// unownedGW is an address of docker_gwbridge's subnet that nothing on a
// node has: tasks take addresses from the bottom.
var unownedGW = netip.MustParseAddr("172.18.255.254")

func planDNATUnowned(p *planner) error {
	return p.redirectDNAT(netip.AddrPortFrom(unownedGW, uint16(p.svc.Published)))
}
