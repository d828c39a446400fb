package topology

import "net/netip"

// NodeAddress is the address clients and the other nodes reach this node
// on, and the link of the host namespace that holds it (the uplink): where
// published traffic and other nodes' VXLAN arrive, what a probe dials and
// where trace captures them. It is the first global IPv4 address (in link
// order) of
//
//  1. a link that is neither a bridge nor a bridge port (the NIC);
//  2. else the link the default route leaves by (when routes were read):
//     the NIC enslaved to a bridge that holds the node's address (eth0 in
//     br0) makes that bridge the uplink;
//  3. else a bridge with a port that is neither a veth, a VXLAN device
//     nor a bridge (a NIC: Docker's bridges have only veths);
//  4. else any link (docker_gwbridge's address is still the node's own).
//
// It returns the zero address and nil when the host has no global IPv4
// address. This is the one rule: path evaluation, trace and doctor all ask
// it.
func NodeAddress(host *Namespace) (netip.Addr, *Link) {
	if host == nil {
		return netip.Addr{}, nil
	}
	nicBridges := map[string]bool{}
	for _, l := range host.Links {
		if l.Master != "" && l.Kind != "veth" && l.Kind != "vxlan" && l.Kind != "bridge" && l.Peer == nil {
			nicBridges[l.Master] = true
		}
	}
	defaultDev := ""
	for _, r := range host.Routes {
		if r.IsDefault() && r.Dev != "" {
			defaultDev = r.Dev
			break
		}
	}
	for _, pick := range []func(*Link) bool{
		func(l *Link) bool { return l.Kind != "bridge" && l.Master == "" },
		func(l *Link) bool { return l.Name == defaultDev },
		func(l *Link) bool { return l.Kind == "bridge" && nicBridges[l.Name] },
		func(*Link) bool { return true },
	} {
		for _, l := range host.Links {
			if a, ok := globalV4(l); ok && pick(l) {
				return a, l
			}
		}
	}
	return netip.Addr{}, nil
}

// globalV4 is the link's first IPv4 address that is not a loopback one.
func globalV4(l *Link) (netip.Addr, bool) {
	if l.Kind == "loopback" {
		return netip.Addr{}, false
	}
	for _, p := range l.Addrs {
		if a := p.Addr(); a.Is4() && !a.IsLoopback() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// nodeAddr is the address path evaluation sends an outside client's packet
// to: NodeAddress, else 127.0.0.1.
func nodeAddr(host *Namespace) netip.Addr {
	if a, _ := NodeAddress(host); a.IsValid() {
		return a
	}
	return netip.MustParseAddr("127.0.0.1")
}

// externalIface is the interface that packet arrives on: the uplink, else
// eth0.
func externalIface(host *Namespace) string {
	if _, l := NodeAddress(host); l != nil {
		return l.Name
	}
	return "eth0"
}
