package fault

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// conntrack deletes entries over ctnetlink inside the namespace.
type conntrack struct{ meshOnly }

var _ Conntrack = conntrack{}

func (k conntrack) DeleteConntrack(netns, proto string, sport int) (int, error) {
	if err := k.mine(netns); err != nil {
		return 0, err
	}
	num := map[string]uint8{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP}[proto]
	if num == 0 || sport < 1 || sport > 65535 {
		return 0, fmt.Errorf("conntrack delete: bad protocol %q or port %d", proto, sport)
	}
	var n uint
	err := withHandle(netns, unix.NETLINK_NETFILTER, func(h *netlink.Handle) error {
		f := &netlink.ConntrackFilter{}
		if err := f.AddProtocol(num); err != nil {
			return err
		}
		if err := f.AddPort(netlink.ConntrackOrigSrcPort, uint16(sport)); err != nil {
			return err
		}
		var err error
		n, err = h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("conntrack delete in %s: %w", netns, err)
	}
	return int(n), nil
}
