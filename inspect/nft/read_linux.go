package nft

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
)

// Read returns the IPv4 iptables ruleset of the netns at nsPath ("" = the
// caller's netns) decoded from the kernel's nf_tables: tables filter, nat,
// mangle, raw and security of family ip as iptables-nft creates them. When
// the namespace has no such tables but legacy x_tables ones, the error
// wraps ErrLegacy (a *LegacyError) and the caller should exec iptables-save.
func Read(nsPath string) (*topology.Firewall, error) {
	return read(kernel{}, nsPath)
}

// kernel is the real source: netlink through github.com/google/nftables.
type kernel struct{}

var _ source = kernel{}

// maxGenRetries bounds the re-reads when the ruleset changes between the
// table, chain and rule dumps.
const maxGenRetries = 5

func (kernel) dump(nsPath string) (*Dump, error) {
	nl, closer, err := openDumper(nsPath)
	if err != nil {
		return nil, err
	}
	defer closer()
	return dumpRetrying(nl, nsPath)
}

// dumpRetrying dumps until one generation answers every request.
func dumpRetrying(nl *nlDumper, nsPath string) (*Dump, error) {
	for try := 0; ; try++ {
		d, consistent, err := dumpOnce(nl, unix.NFPROTO_IPV4)
		if err != nil {
			return nil, fmt.Errorf("nft: netns %s: %w", nsName(nsPath), err)
		}
		if consistent {
			return d, nil
		}
		if try == maxGenRetries {
			return nil, fmt.Errorf("nft: netns %s: ruleset kept changing during %d reads", nsName(nsPath), try+1)
		}
	}
}

func nsName(nsPath string) string {
	if nsPath == "" {
		return "current netns"
	}
	return nsPath
}

// openDumper opens a NETLINK_NETFILTER socket inside the namespace.
func openDumper(nsPath string) (*nlDumper, func(), error) {
	h, err := netnsx.Open(nsPath)
	if err != nil {
		return nil, nil, fmt.Errorf("nft: %w", err)
	}
	defer h.Close()
	// The library dials the socket inside the namespace (WithNetNSFd); the
	// socket option hands us that socket for the whole-family dumps the
	// library has no call for (rules of every chain at once, chain
	// counters, generation ids).
	var nl *netlink.Conn
	cc, err := nftables.New(nftables.WithNetNSFd(int(h)), nftables.AsLasting(),
		nftables.WithSockOptions(func(c *netlink.Conn) error { nl = c; return nil }))
	if err != nil {
		return nil, nil, fmt.Errorf("nft: netns %s: open nf_tables netlink: %w", nsName(nsPath), err)
	}
	closer := func() { _ = cc.CloseLasting() }
	if nl == nil {
		closer()
		return nil, nil, fmt.Errorf("nft: netns %s: nftables did not dial a netlink socket", nsName(nsPath))
	}
	rc, err := nl.SyscallConn()
	if err != nil {
		closer()
		return nil, nil, fmt.Errorf("nft: netns %s: %w", nsName(nsPath), err)
	}
	return &nlDumper{rc: rc}, closer, nil
}

// dumpOnce dumps tables, chains and rules; consistent is false when the
// replies came from different ruleset generations.
func dumpOnce(nl *nlDumper, family uint8) (d *Dump, consistent bool, err error) {
	b := newDumpBuilder()
	for _, msg := range dumpMessages {
		i := 0
		err := nl.dump(unix.NFNL_SUBSYS_NFTABLES<<8|msg, family, func(data []byte) error {
			if err := b.add(msg, data); err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			i++
			return nil
		})
		if err != nil {
			return nil, false, fmt.Errorf("dump %s: %w", msgName(msg), err)
		}
	}
	return &b.d, b.consistent, nil
}

// legacyTables reads the legacy x_tables table names as the namespace sees
// them.
func (kernel) legacyTables(nsPath string) ([]string, error) {
	var names []string
	err := netnsx.Do(nsPath, func() (err error) {
		names, err = LegacyTablesHere()
		return err
	})
	if err != nil {
		return nil, legacyErr(nsPath, err)
	}
	return names, nil
}

func legacyErr(nsPath string, err error) error {
	return fmt.Errorf("nft: netns %s: read legacy table names: %w", nsName(nsPath), err)
}

// LegacyTablesHere lists the legacy x_tables tables of the namespace the
// calling thread is in (inside netnsx.Do): /proc/thread-self, not
// /proc/self, which follows the main thread.
func LegacyTablesHere() ([]string, error) {
	b, err := os.ReadFile("/proc/thread-self/net/ip_tables_names")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no ip_tables in this kernel: nothing legacy
	}
	return strings.Fields(string(b)), err
}

// Opened is what a reader already inside a namespace (a netnsx.Do it
// makes anyway) opens there for ReadOpened, so that the nf_tables read
// does not enter the namespace again: a NETLINK_NETFILTER socket
// (OpenHere) and the legacy table names (LegacyTablesHere) with the error
// reading them.
type Opened struct {
	Sock      *os.File
	Legacy    []string
	LegacyErr error
}

// OpenHere opens a NETLINK_NETFILTER socket in the namespace the calling
// thread is in (inside netnsx.Do), non-blocking so that reads wait in the
// runtime's poller under a deadline. The caller closes it.
func OpenHere() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("nf_tables netlink socket: %w", err)
	}
	return os.NewFile(uintptr(fd), "netlink-netfilter"), nil
}

// ReadOpened is Read through what o holds, opened inside the namespace at
// nsPath (named in errors; ipset names are still looked up there). Every
// exchange must end within timeout.
func ReadOpened(nsPath string, o *Opened, timeout time.Duration) (*topology.Firewall, error) {
	if err := o.Sock.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("nft: netns %s: %w", nsName(nsPath), err)
	}
	return read(opened{o}, nsPath)
}

// opened is the source over an Opened.
type opened struct{ o *Opened }

func (s opened) dump(nsPath string) (*Dump, error) {
	rc, err := s.o.Sock.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("nft: netns %s: %w", nsName(nsPath), err)
	}
	return dumpRetrying(&nlDumper{rc: rc}, nsPath)
}

func (s opened) legacyTables(nsPath string) ([]string, error) {
	if s.o.LegacyErr != nil {
		return nil, legacyErr(nsPath, s.o.LegacyErr)
	}
	return s.o.Legacy, nil
}

func (opened) setNames(nsPath string, ids []uint16) (map[uint16]string, error) {
	return kernel{}.setNames(nsPath, ids)
}
