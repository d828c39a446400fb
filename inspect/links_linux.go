package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// kernelLinks reads links, addresses, routes, neighbours and FDB entries
// over rtnetlink, with the target's sockets. With kept, it keeps the
// rtnetlink socket of each namespace that has a veth whose peer another
// namespace holds, for the netnsid questions that may follow (netnsIDs).
type kernelLinks struct {
	kept *keptSockets
}

var _ LinkReader = kernelLinks{}

// dumpRetries bounds retries of a dump the kernel interrupted (the table
// changed while it was being dumped).
const dumpRetries = 3

func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpRetries {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) && !errors.Is(err, errDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (Linux 4.19+; older
// kernels ignore it).
const rtextFilterSkipStats = 1 << 3

// linkDump is netlink.LinkList over a raw rtnetlink socket, which also
// returns each link's IPv4 devconf (by ifindex).
func linkDump(fd int) ([]netlink.Link, map[int][]uint32, error) {
	var links []netlink.Link
	conf := map[int][]uint32{}
	var derr error
	// ifinfomsg (AF_UNSPEC: all links), then IFLA_EXT_MASK asking the
	// kernel to leave out the link statistics nobody reads here.
	req := make([]byte, unix.SizeofIfInfomsg+8)
	binary.NativeEndian.PutUint16(req[unix.SizeofIfInfomsg:], 8)
	binary.NativeEndian.PutUint16(req[unix.SizeofIfInfomsg+2:], unix.IFLA_EXT_MASK)
	binary.NativeEndian.PutUint32(req[unix.SizeofIfInfomsg+4:], rtextFilterSkipStats)
	err := nlDump(fd, unix.RTM_GETLINK, req, func(typ uint16, data []byte) {
		if typ != unix.RTM_NEWLINK || derr != nil {
			return
		}
		l, err := netlink.LinkDeserialize(nil, data)
		if err != nil {
			derr = err
			return
		}
		links = append(links, l)
		if c := inetDevconf(data); c != nil {
			conf[l.Attrs().Index] = c
		}
	})
	if err == nil {
		err = derr
	}
	return links, conf, err
}

// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER from an
// attribute type.
const nlaTypeMask = 0x3fff

// inetDevconf digs IFLA_AF_SPEC / AF_INET / IFLA_INET_CONF out of an
// RTM_NEWLINK payload; nil when absent.
func inetDevconf(data []byte) []uint32 {
	if len(data) < unix.SizeofIfInfomsg {
		return nil
	}
	// (walked in place: parsing each level into a slice of attributes
	// was an eighth of what a live read allocated)
	find := func(b []byte, typ uint16) []byte {
		var out []byte
		forNlAttrs(b, func(t uint16, v []byte) {
			if out == nil && t == typ {
				out = v
			}
		})
		return out
	}
	v := find(data[unix.SizeofIfInfomsg:], unix.IFLA_AF_SPEC)
	if v = find(v, unix.AF_INET); v == nil {
		return nil
	}
	if v = find(v, 1); v == nil { // IFLA_INET_CONF
		return nil
	}
	out := make([]uint32, len(v)/4)
	for i := range out {
		out[i] = binary.NativeEndian.Uint32(v[4*i:])
	}
	return out
}

func (k kernelLinks) ReadLinks(t *Target) (*LinkData, error) {
	h, err := t.handle()
	if err != nil {
		return nil, err
	}
	var conf map[int][]uint32
	nl, err := retry(func() ([]netlink.Link, error) {
		var l []netlink.Link
		var err error
		l, conf, err = linkDump(t.res.route)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("link list: %w", err)
	}
	d := &LinkData{Links: make([]*topology.Link, 0, len(nl)), Sysctls: topology.Sysctls{}}
	names := make(map[int]string, len(nl))
	byIndex := make(map[int]*topology.Link, len(nl))
	for _, l := range nl {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	fdb := false // any bridge, bridge port or VXLAN device
	for _, l := range nl {
		tl := convertLink(l, names)
		d.Links = append(d.Links, tl)
		byIndex[tl.Index] = tl
		fdb = fdb || tl.Master != "" || tl.Kind == "bridge" || tl.Kind == "vxlan"
		for _, k := range devconfKnobs {
			if c := conf[tl.Index]; len(c) > k.index {
				d.Sysctls["net.ipv4.conf."+tl.Name+"."+k.name] = strconv.FormatUint(uint64(c[k.index]), 10)
			}
		}
	}
	var errs []error
	addrs, err := retry(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		errs = append(errs, fmt.Errorf("address list: %w", err))
	}
	for _, a := range addrs {
		l := byIndex[a.LinkIndex]
		if l == nil || a.IPNet == nil {
			continue
		}
		if p, ok := prefixOf(a.IPNet); ok {
			l.Addrs = append(l.Addrs, p)
		}
	}
	routes, err := retry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("route list: %w", err))
	}
	for _, r := range routes {
		d.Routes = append(d.Routes, convertRoute(r, names)...)
	}
	neighs, err := retry(func() ([]netlink.Neigh, error) { return h.NeighList(0, netlink.FAMILY_V4) })
	if err != nil {
		errs = append(errs, fmt.Errorf("neighbour list: %w", err))
	}
	for _, n := range neighs {
		if n.IP == nil {
			continue
		}
		d.Neighbours = append(d.Neighbours, topology.Neigh{IP: addrOf(n.IP), MAC: topology.MACFrom(n.HardwareAddr),
			Dev: names[n.LinkIndex], State: neighState(n.State)})
	}
	var entries []netlink.Neigh
	if fdb {
		entries, err = retry(func() ([]netlink.Neigh, error) { return h.NeighList(0, unix.AF_BRIDGE) })
		if err != nil {
			errs = append(errs, fmt.Errorf("fdb list: %w", err))
		}
	}
	for _, n := range entries {
		l := byIndex[n.LinkIndex]
		if l == nil {
			continue
		}
		e := topology.FDB{MAC: topology.MACFrom(n.HardwareAddr), Dev: l.Name, State: neighState(n.State), Dst: addrOf(n.IP)}
		if keepFDB(e, l) {
			d.FDB = append(d.FDB, e)
		}
	}
	for _, l := range d.Links {
		if l.Peer != nil && l.Peer.Index > 0 && l.Peer.NetnsID >= 0 {
			t.res.keepRoute = k.kept // t.close hands the socket over
			break
		}
	}
	return d, errors.Join(errs...)
}

func convertLink(l netlink.Link, names map[int]string) *topology.Link {
	a := l.Attrs()
	tl := &topology.Link{
		Index:  a.Index,
		Name:   a.Name,
		Kind:   l.Type(),
		MTU:    a.MTU,
		MAC:    topology.MACFrom(a.HardwareAddr),
		Up:     a.Flags&net.FlagUp != 0,
		Master: names[a.MasterIndex],
	}
	if a.Flags&net.FlagLoopback != 0 || a.EncapType == "loopback" {
		tl.Kind = "loopback"
	}
	switch v := l.(type) {
	case *netlink.Veth:
		if a.ParentIndex > 0 {
			tl.Peer = &topology.Peer{Index: a.ParentIndex, NetnsID: a.NetNsID}
		}
	case *netlink.Vxlan:
		tl.VXLAN = &topology.VXLANInfo{ID: v.VxlanId, Port: v.Port, Local: specified(v.SrcAddr), Group: specified(v.Group),
			Learning: v.Learning, Proxy: v.Proxy}
	}
	return tl
}

func convertRoute(r netlink.Route, names map[int]string) []topology.Route {
	dst := topology.DefaultRoute
	if r.Dst != nil {
		if p, ok := prefixOf(r.Dst); ok && p.Bits() > 0 {
			dst = p.Masked()
		}
	}
	base := topology.Route{Dst: dst, Src: specified(r.Src)}
	if r.Table != unix.RT_TABLE_MAIN {
		base.Table = r.Table
	}
	if len(r.MultiPath) == 0 {
		base.Gateway, base.Dev = specified(r.Gw), names[r.LinkIndex]
		return []topology.Route{base}
	}
	out := make([]topology.Route, 0, len(r.MultiPath))
	for _, nh := range r.MultiPath {
		rr := base
		rr.Gateway, rr.Dev = specified(nh.Gw), names[nh.LinkIndex]
		out = append(out, rr)
	}
	return out
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	a = a.Unmap()
	if a.Is4() && ones > 32 {
		ones -= 96
	}
	return netip.PrefixFrom(a, ones), true
}

// specified is ip as an address, the zero one when it is nil or
// unspecified (0.0.0.0: no gateway, no source).
func specified(ip net.IP) netip.Addr {
	if ip == nil || ip.IsUnspecified() {
		return netip.Addr{}
	}
	return addrOf(ip)
}

// neighState names NUD_* bits as `ip neigh` does, lower-case.
func neighState(s int) string { return topology.NeighStateName(s) }

// NetnsID asks namespace from's rtnetlink which netnsid it gave to.
func (kernelLinks) NetnsID(from, to NetnsRef) (int, error) {
	s := &netnsIDSession{}
	defer s.close()
	return s.ask(from, to)
}

var _ netnsIDAsker = kernelLinks{}

func (k kernelLinks) netnsIDs() netnsIDs { return &netnsIDSession{kept: k.kept} }

// release closes the sockets kept (Live calls it when done).
func (k kernelLinks) release() { k.kept.close() }

// keptSockets are rtnetlink sockets left open in the namespaces read, by
// namespace path, so that a netnsid question from one needs neither a
// visit nor a new socket; at most max (a quarter of the descriptor
// limit, at most 4,096).
type keptSockets struct {
	mu    sync.Mutex
	fds   map[string]int
	max   int
	ready bool
	total int // kept so far
}

func (k *keptSockets) keep(path string, fd int) bool {
	if k == nil || fd <= 0 {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.ready {
		k.ready, k.max, k.fds = true, 0, map[string]int{}
		var rl unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
			k.max = int(min(rl.Cur/4, 4096))
		}
	}
	if len(k.fds) >= k.max || k.fds[path] > 0 {
		return false
	}
	k.fds[path] = fd
	k.total++
	return true
}

func (k *keptSockets) sock(path string) int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fds[path]
}

func (k *keptSockets) close() {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, fd := range k.fds {
		unix.Close(fd)
	}
	clear(k.fds)
}

// netnsIDSession asks netnsids as NetnsID does, keeping what the next
// question can use: a raw rtnetlink socket in the asking namespace (made
// in one visit, kept while the questions come from it), its buffers, and
// the namespace files opened (up to maxOpenTargets). On a node of 9 alike
// worlds, 2,000 namespaces, resolving the peers asks about 12,000
// questions, one after the other; with a visit, a library handle and a
// 64 KiB receive buffer each they took 0.9 s.
type netnsIDSession struct {
	kept    *keptSockets
	from    string
	sock    int  // in from; 0: none
	own     bool // sock is the session's (not kept's)
	buf     []byte
	targets map[string]netns.NsHandle
}

const maxOpenTargets = 1024

func (s *netnsIDSession) ask(from, to NetnsRef) (int, error) {
	fd, ok := s.targets[to.Path]
	if !ok {
		var err error
		if fd, err = netnsx.Open(to.Path); err != nil {
			return -1, err
		}
		if len(s.targets) >= maxOpenTargets {
			s.closeTargets()
		}
		if s.targets == nil {
			s.targets = map[string]netns.NsHandle{}
		}
		s.targets[to.Path] = fd
	}
	if s.sock <= 0 || s.from != from.Path {
		s.closeSock()
		if s.sock = s.kept.sock(from.Path); s.sock <= 0 {
			err := netnsx.Do(from.Path, func() (err error) {
				s.sock, err = rawNetlink(unix.NETLINK_ROUTE)
				return err
			})
			if err != nil {
				s.sock = 0
				return -1, err
			}
			s.own = true
		}
		s.from = from.Path
	}
	if s.buf == nil {
		s.buf = make([]byte, 4096)
	}
	return getNetnsID(s.sock, int(fd), s.buf)
}

// getNetnsID asks RTM_GETNSID with NETNSA_FD fd on the rtnetlink socket
// sock: the netnsid sock's namespace gave fd's (-1: none), as
// vishvananda/netlink's GetNetNsIdByFd does.
func getNetnsID(sock, fd int, buf []byte) (int, error) {
	const (
		netnsaNSID = 1 // NETNSA_NSID
		netnsaFD   = 3 // NETNSA_FD
	)
	// struct rtgenmsg (AF_UNSPEC, padded to 4), then NETNSA_FD.
	body := make([]byte, 4+8)
	binary.NativeEndian.PutUint16(body[4:], 8)
	binary.NativeEndian.PutUint16(body[6:], netnsaFD)
	binary.NativeEndian.PutUint32(body[8:], uint32(fd))
	id := -1
	found := false
	err := nlExchange(sock, unix.RTM_GETNSID, unix.NLM_F_REQUEST, body, buf, func(typ uint16, data []byte) bool {
		if typ != unix.RTM_NEWNSID || len(data) < 4 {
			return false
		}
		forNlAttrs(data[4:], func(t uint16, v []byte) {
			if t == netnsaNSID && len(v) >= 4 {
				id, found = int(int32(binary.NativeEndian.Uint32(v))), true
			}
		})
		return true
	})
	if err != nil {
		return -1, err
	}
	if !found {
		return -1, errors.New("unexpected empty result")
	}
	return id, nil
}

func (s *netnsIDSession) closeSock() {
	if s.sock > 0 && s.own {
		unix.Close(s.sock)
	}
	s.sock, s.own = 0, false
}

func (s *netnsIDSession) closeTargets() {
	for _, fd := range s.targets {
		fd.Close()
	}
	clear(s.targets)
}

func (s *netnsIDSession) close() {
	s.closeSock()
	s.closeTargets()
}
