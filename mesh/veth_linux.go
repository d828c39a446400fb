package mesh

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Veths creates ns's veth pairs, one RTM_NEWLINK each, sent in the
// namespace of the bridge side: that end is created there already
// enslaved (IFLA_MASTER) and up, the other end directly in ns
// (IFLA_NET_NS_FD) with its name, MAC and MTU; Configure brings it up
// when it looks it up for its addresses anyway. netlink.LinkAdd would take
// five round trips per pair (add, look both ends up, enslave, up); with
// hundreds of pairs under the kernel's RTNL lock that is what counts.
func (s *linuxSystem) Veths(ns *NetnsSpec) error {
	nh, err := s.handle(ns.Path)
	if err != nil {
		return err
	}
	for _, v := range ns.Veths {
		ph, err := s.handle(v.PeerPath)
		if err != nil {
			return err
		}
		master := 0
		if v.PeerMaster != "" {
			if master, err = s.bridgeIndex(ph, v.PeerPath, v.PeerMaster); err != nil {
				return fmt.Errorf("veth %s in %s: %w", v.PeerName, v.PeerPath, err)
			}
		}
		req, err := vethRequest(v, master, int(nh.fd))
		if err != nil {
			return err
		}
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: ph.sock}
		if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
			return fmt.Errorf("veth %s in %s (peer %s): %w", v.PeerName, v.PeerPath, v.Name, err)
		}
	}
	return nil
}

// vethRequest builds the RTM_NEWLINK for one pair: the bridge-side end
// v.PeerName (master, up) with the end v.Name in the namespace nsFD.
func vethRequest(v VethSpec, master, nsFD int) (*nl.NetlinkRequest, error) {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(v.PeerName)))
	if v.PeerMTU > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(v.PeerMTU))))
	}
	if master > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(master))))
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	peer := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	// The far end cannot be created up: a veth refuses to open before
	// its peer is linked (ENOTCONN). Configure brings it up.
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(v.Name))
	if v.MTU > 0 {
		peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(v.MTU)))
	}
	if v.MAC != "" {
		mac, err := net.ParseMAC(v.MAC)
		if err != nil {
			return nil, fmt.Errorf("veth %s: %w", v.Name, err)
		}
		peer.AddRtAttr(unix.IFLA_ADDRESS, []byte(mac))
	}
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(nsFD)))
	req.AddData(info)
	return req, nil
}
