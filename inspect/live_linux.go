package inspect

import (
	"errors"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/inspect/nft"
	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// targetRes holds the netlink sockets opened in a target namespace, made
// in one visit of the namespace and reused by every reader of it: a
// vishvananda/netlink handle (rtnetlink, ctnetlink, generic netlink) and a
// raw sock_diag socket.
type targetRes struct {
	h     *netlink.Handle
	diag  int // NETLINK_INET_DIAG
	route int // NETLINK_ROUTE, for the raw link dump
	// keepRoute, when set, takes route at close instead of closing it
	// (kernelLinks: for the netnsid questions after the read).
	keepRoute *keptSockets
	err       error
	opened    bool
	// netfilter: h has a NETLINK_NETFILTER socket (see nlFamilies).
	netfilter bool
	// xfrm is a NETLINK_XFRM socket, when the gate allows (see
	// xfrm_linux.go); xfrmErr why it could not be opened.
	xfrm    int
	xfrmErr error
	// nft is the nf_tables reader's socket and legacy table names, made
	// in the same visit when the gate allows nf_tables (nil: not made,
	// the reader enters the namespace itself).
	nft *nft.Opened
}

// nlFamilies are the netlink families of the handle, NETLINK_NETFILTER
// only when nfnetlink is there (opening the socket would load it,
// kmod.NeedNFNetlink; the generic netlink and sock_diag sockets are built
// into every kernel). A vishvananda/netlink Handle without a family
// silently opens a socket in the caller's namespace instead, so every
// family used through it must be here, or its user must check.
func (t *Target) nlFamilies() []int {
	fams := []int{unix.NETLINK_ROUTE, unix.NETLINK_GENERIC}
	if kmod.NeedNFNetlink.Check(t.gate()) == nil {
		t.res.netfilter = true
		fams = append(fams, unix.NETLINK_NETFILTER)
	}
	return fams
}

// nlTimeout bounds every netlink exchange, so a wedged namespace cannot
// hang the whole read.
const nlTimeout = 10 * time.Second

// open makes t's sockets; it runs inside t's namespace.
func (t *Target) open() error {
	t.res.opened = true
	h, err := netlink.NewHandle(t.nlFamilies()...)
	if err != nil {
		return fmt.Errorf("netlink sockets: %w", err)
	}
	t.res.h = h
	if err := h.SetSocketTimeout(nlTimeout); err != nil {
		return fmt.Errorf("netlink sockets: %w", err)
	}
	if t.res.diag, err = rawNetlink(unix.NETLINK_INET_DIAG); err != nil {
		return fmt.Errorf("sock_diag socket: %w", err)
	}
	if t.res.route, err = rawNetlink(unix.NETLINK_ROUTE); err != nil {
		return fmt.Errorf("rtnetlink socket: %w", err)
	}
	if kmod.NeedXfrm.Check(t.gate()) == nil {
		// Its failure (a kernel without xfrm_user) is the xfrm reader's.
		t.res.xfrm, t.res.xfrmErr = rawNetlink(unix.NETLINK_XFRM)
	}
	if t.res.netfilter && kmod.NeedNFTables.Check(t.gate()) == nil {
		// (on failure the nf_tables reader opens its own, and says why)
		if sock, err := nft.OpenHere(); err == nil {
			legacy, lerr := nft.LegacyTablesHere()
			t.res.nft = &nft.Opened{Sock: sock, Legacy: legacy, LegacyErr: lerr}
		}
	}
	return nil
}

// rawNetlink opens a netlink socket of the given family in the current
// namespace, with nlTimeout on both directions.
func rawNetlink(family int) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, family)
	if err != nil {
		return 0, err
	}
	tv := unix.NsecToTimeval(nlTimeout.Nanoseconds())
	err = errors.Join(unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv))
	if err != nil {
		unix.Close(fd)
		return 0, err
	}
	return fd, nil
}

// handle returns t's netlink handle, opening t's sockets on first use.
func (t *Target) handle() (*netlink.Handle, error) {
	if !t.res.opened {
		t.res.err = netnsx.Do(t.Path, t.open)
	}
	return t.res.h, t.res.err
}

// inside runs fn in t's namespace; the same visit opens t's sockets when
// that has not happened yet, so a namespace is entered once for both.
func (t *Target) inside(fn func() error) error {
	if t.res.opened {
		return netnsx.Do(t.Path, fn)
	}
	return netnsx.Do(t.Path, func() error {
		t.res.err = t.open()
		return fn()
	})
}

func (t *Target) close() {
	if t.res.h != nil {
		t.res.h.Close()
		t.res.h = nil
	}
	if t.res.nft != nil {
		t.res.nft.Sock.Close()
		t.res.nft = nil
	}
	if t.res.keepRoute.keep(t.Path, t.res.route) {
		t.res.route = 0 // kept's now
	}
	for _, fd := range []*int{&t.res.diag, &t.res.route, &t.res.xfrm} {
		if *fd > 0 {
			unix.Close(*fd)
			*fd = 0
		}
	}
}

// needLinux: live reads work here.
func needLinux() error { return nil }

// kernelReaders are the real readers.
func kernelReaders() Readers {
	return Readers{
		Links:     kernelLinks{kept: &keptSockets{}},
		Firewall:  kernelFirewall{},
		IPVS:      NewIPVSReader(kernelIPVS{}),
		Conntrack: kernelConntrack{},
		Sysctl:    kernelSysctls{roots: &netnsx.SysctlRoots{}},
		Sockets:   kernelSockets{},
	}
}
