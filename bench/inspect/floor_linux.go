package inspectbench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// The floor of a live inspect: what no reader of these namespaces can
// avoid. For every namespace, one setns (through internal/netnsx) and in
// it one socket per netlink family, the same kernel requests meshtrace's
// live reader makes (read from inspect/live*.go, links_linux.go,
// sysctl_linux.go, sockets_linux.go, conntrack_linux.go, ipvs_linux.go
// and inspect/nft), each reply received into one reused buffer and walked
// only as far as NLMSG_DONE, nothing decoded:
//
//   - /proc/sys/net: ipv4/{ip_forward,conf/all/rp_filter,
//     conf/all/route_localnet}, ipv4/vs/{conntrack,expire_nodest_conn,
//     conn_reuse_mode}, netfilter/{nf_conntrack_count,nf_conntrack_max},
//     bridge/bridge-nf-call-iptables (openat from the directories, as the
//     reader does, and like it below the sys/net of private procfs
//     instances, netnsx.SysctlRoots), /proc/thread-self/net/sockstat and
//     sockstat6;
//   - rtnetlink: RTM_GETLINK (IFLA_EXT_MASK skip-stats), RTM_GETADDR
//     (all families), RTM_GETROUTE (IPv4), RTM_GETNEIGH (IPv4), and
//     RTM_GETNEIGH (AF_BRIDGE, the FDB) where a link is a bridge, a VXLAN
//     device or a bridge port;
//   - sock_diag: TCP LISTEN and UDP unconnected, IPv4 and IPv6, where
//     sockstat counts a TCP or UDP socket;
//   - nf_tables: NFT_MSG_GETTABLE, GETCHAIN, GETRULE of family ip, and
//     /proc/thread-self/net/ip_tables_names (the legacy check);
//   - generic netlink: CTRL_CMD_GETFAMILY "IPVS" (this kernel has no
//     IPVS: with it, the reader also dumps services and destinations,
//     which this floor does not);
//   - ctnetlink: IPCTNL_MSG_CT_GET (IPv4) where nf_conntrack_count > 0;
//   - xfrm: XFRM_MSG_GETSA and XFRM_MSG_GETPOLICY (the reader's xfrm
//     dumps, inspect/xfrm_linux.go).
//
// Counted with strace on the 200-namespace node (before the xfrm dumps
// were added to both): both made 1,606 sendto and about 2,830 receives.
// The reader enters each namespace once (sysctls, its sockets, the
// nf_tables socket and the legacy check in one visit, Target.inside) and
// opens 7 sockets, the floor enters once and opens 5. Both are parallel
// alike: workers goroutines (4 per CPU), each locked to its own thread
// inside netnsx.Do.
//
// The reader resolves veth peers from ifindexes; on these worlds it asks
// no RTM_GETNSID (counted once: 0 asks for 200 namespaces), so the floor
// asks none either. The few numbers that decide whether a request is
// made (socket and conntrack counts, link kinds) are looked up with the
// least parsing that can answer.

// FloorStats is what a floor read saw.
type FloorStats struct {
	Namespaces int
	Requests   int64 // netlink requests sent
	Bytes      int64 // netlink reply bytes received
	Files      int64 // /proc files read
	// Phases is the time spent in each part, summed over the workers
	// (so, with workers in parallel, more than the wall time).
	Phases [numPhases]time.Duration
}

// The parts of a floor read.
const (
	PhaseSetns   = iota // entering and leaving the namespace (netnsx.Do)
	PhaseProc           // /proc/sys and /proc/thread-self/net reads
	PhaseSockets        // opening and closing the netlink sockets
	PhaseNetlink        // the requests and their replies
	numPhases
)

// PhaseNames name the phases in report keys.
var PhaseNames = [numPhases]string{"setns", "proc", "sockets", "netlink"}

// Floor reads the namespaces of host + dirs (inspect.Discover's list)
// with workers goroutines, as inspect.Live does (0: 4 per CPU), in
// parallel like it: each worker a goroutine locked to its own thread
// inside netnsx.Do.
func Floor(host string, dirs []string, workers int) (FloorStats, error) {
	roots := &netnsx.SysctlRoots{}
	defer roots.Close()
	return floor(host, dirs, workers, roots)
}

// FloorSharedProc is Floor with the /proc/sys/net reads made in /proc
// itself, as the reader made them before netnsx.SysctlRoots: the
// difference is what the kernel's shared dcache chain costs (see
// SysctlRoots).
func FloorSharedProc(host string, dirs []string, workers int) (FloorStats, error) {
	return floor(host, dirs, workers, nil)
}

func floor(host string, dirs []string, workers int, roots *netnsx.SysctlRoots) (FloorStats, error) {
	refs, err := inspect.Discover(host, dirs)
	if err != nil {
		return FloorStats{}, err
	}
	if workers <= 0 {
		workers = liveWorkers()
	}
	var st FloorStats
	// The reader dumps conntrack only where its module is there (kmod's
	// gate: the request would load it); so does the floor.
	ctOK := kmod.NeedConntrack.Check(kmod.Host()) == nil
	var reqs, bytes, files atomic.Int64
	var phases [numPhases]atomic.Int64
	var mu sync.Mutex
	var errs []error
	jobs := make(chan inspect.NetnsRef)
	var wg sync.WaitGroup
	for range min(workers, len(refs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &floorReader{buf: make([]byte, 64<<10), roots: roots, ctOK: ctOK}
			for ref := range jobs {
				t0 := time.Now()
				var inside time.Duration
				err := netnsx.Do(ref.Path, func() error {
					t1 := time.Now()
					err := f.read()
					inside = time.Since(t1)
					return err
				})
				f.phase[PhaseSetns] += time.Since(t0) - inside
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("floor: netns %s: %w", ref.Name, err))
					mu.Unlock()
				}
			}
			reqs.Add(f.reqs)
			bytes.Add(f.bytes)
			files.Add(f.files)
			for i, d := range f.phase {
				phases[i].Add(int64(d))
			}
		}()
	}
	for _, r := range refs {
		jobs <- r
	}
	close(jobs)
	wg.Wait()
	st.Namespaces, st.Requests, st.Bytes, st.Files = len(refs), reqs.Load(), bytes.Load(), files.Load()
	for i := range phases {
		st.Phases[i] = time.Duration(phases[i].Load())
	}
	return st, errors.Join(errs...)
}

// floorReader is one worker's buffer and counters.
type floorReader struct {
	roots              *netnsx.SysctlRoots
	buf                []byte
	seq                uint32
	reqs, bytes, files int64
	sockets, conntrack int
	fdb                bool
	ctOK               bool // ctnetlink is there (kmod.NeedConntrack)
	phase              [numPhases]time.Duration
}

// lap adds the time since *t to phase p and restarts *t.
func (f *floorReader) lap(p int, t *time.Time) {
	now := time.Now()
	f.phase[p] += now.Sub(*t)
	*t = now
}

var sysctlFiles = []struct {
	dir   string
	files []string
}{
	{"ipv4", []string{"ip_forward", "conf/all/rp_filter", "conf/all/route_localnet"}},
	{"ipv4/vs", []string{"conntrack", "expire_nodest_conn", "conn_reuse_mode"}},
	{"netfilter", []string{"nf_conntrack_count", "nf_conntrack_max"}},
	{"bridge", []string{"bridge-nf-call-iptables"}},
}

// read runs inside the namespace.
func (f *floorReader) read() error {
	f.sockets, f.conntrack, f.fdb = 0, 0, false
	t := time.Now()
	if err := f.sysctls(); err != nil {
		return err
	}
	f.lap(PhaseProc, &t)
	defer f.lap(PhaseSockets, &t) // the closes
	var fds [5]int
	for i, family := range []int{unix.NETLINK_ROUTE, unix.NETLINK_INET_DIAG, unix.NETLINK_NETFILTER, unix.NETLINK_GENERIC, unix.NETLINK_XFRM} {
		fd, err := socket(family)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		fds[i] = fd
	}
	route, diag, nfnl, genl, xfrm := fds[0], fds[1], fds[2], fds[3], fds[4]
	f.lap(PhaseSockets, &t)
	defer f.lap(PhaseNetlink, &t) // runs first: the requests

	// rtnetlink
	link := make([]byte, unix.SizeofIfInfomsg+8)
	binary.NativeEndian.PutUint16(link[unix.SizeofIfInfomsg:], 8)
	binary.NativeEndian.PutUint16(link[unix.SizeofIfInfomsg+2:], unix.IFLA_EXT_MASK)
	binary.NativeEndian.PutUint32(link[unix.SizeofIfInfomsg+4:], 1<<3) // RTEXT_FILTER_SKIP_STATS
	if err := f.dump(route, unix.RTM_GETLINK, unix.NLM_F_DUMP, link, f.linkKinds); err != nil {
		return fmt.Errorf("links: %w", err)
	}
	if err := f.dump(route, unix.RTM_GETADDR, unix.NLM_F_DUMP, make([]byte, unix.SizeofIfAddrmsg), nil); err != nil {
		return fmt.Errorf("addresses: %w", err)
	}
	rt := make([]byte, unix.SizeofRtMsg)
	rt[0], rt[4] = unix.AF_INET, unix.RT_TABLE_MAIN
	if err := f.dump(route, unix.RTM_GETROUTE, unix.NLM_F_DUMP, rt, nil); err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	nd := make([]byte, unix.SizeofNdMsg)
	nd[0] = unix.AF_INET
	if err := f.dump(route, unix.RTM_GETNEIGH, unix.NLM_F_DUMP, nd, nil); err != nil {
		return fmt.Errorf("neighbours: %w", err)
	}
	if f.fdb {
		nd[0] = unix.AF_BRIDGE
		if err := f.dump(route, unix.RTM_GETNEIGH, unix.NLM_F_DUMP, nd, nil); err != nil {
			return fmt.Errorf("fdb: %w", err)
		}
	}
	// sock_diag
	if f.sockets != 0 {
		for _, q := range []struct {
			proto  uint8
			states uint32
		}{{unix.IPPROTO_TCP, 1 << 10}, {unix.IPPROTO_UDP, 1 << 7}} {
			for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
				req := make([]byte, 56) // struct inet_diag_req_v2
				req[0], req[1] = fam, q.proto
				binary.NativeEndian.PutUint32(req[4:], q.states)
				if err := f.dump(diag, 20 /* SOCK_DIAG_BY_FAMILY */, unix.NLM_F_DUMP, req, nil); err != nil {
					return fmt.Errorf("sock_diag: %w", err)
				}
			}
		}
	}
	// nf_tables, family ip
	for _, msg := range []uint16{unix.NFT_MSG_GETTABLE, unix.NFT_MSG_GETCHAIN, unix.NFT_MSG_GETRULE} {
		gen := []byte{unix.NFPROTO_IPV4, unix.NFNETLINK_V0, 0, 0}
		if err := f.dump(nfnl, unix.NFNL_SUBSYS_NFTABLES<<8|msg, unix.NLM_F_DUMP, gen, nil); err != nil {
			return fmt.Errorf("nf_tables: %w", err)
		}
	}
	f.lap(PhaseNetlink, &t)
	if _, err := f.readFile(unix.AT_FDCWD, "/proc/thread-self/net/ip_tables_names"); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	f.lap(PhaseProc, &t)
	// generic netlink: is there an IPVS family?
	if err := f.dump(genl, unix.GENL_ID_CTRL, 0, genlGetFamily("IPVS"), nil); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("genl: %w", err)
	}
	// xfrm: SAs and policies
	for _, msg := range []uint16{nl.XFRM_MSG_GETSA, nl.XFRM_MSG_GETPOLICY} {
		if err := f.dump(xfrm, msg, unix.NLM_F_DUMP, nil, nil); err != nil {
			return fmt.Errorf("xfrm: %w", err)
		}
	}
	// ctnetlink
	if f.conntrack > 0 && f.ctOK {
		gen := []byte{unix.AF_INET, unix.NFNETLINK_V0, 0, 0}
		if err := f.dump(nfnl, unix.NFNL_SUBSYS_CTNETLINK<<8|0 /* IPCTNL_MSG_CT_GET */, unix.NLM_F_DUMP, gen, nil); err != nil {
			return fmt.Errorf("conntrack: %w", err)
		}
	}
	return nil
}

// sysctls reads the reader's /proc/sys/net files and sockstat.
func (f *floorReader) sysctls() error {
	net, done, err := f.roots.OpenNet()
	if err != nil {
		return err
	}
	defer done()
	defer unix.Close(net)
	opened := map[string]int{}
	defer func() {
		for _, fd := range opened {
			unix.Close(fd)
		}
	}()
	for _, d := range sysctlFiles {
		base, rel := net, d.dir
		if d.dir == "ipv4/vs" && opened["ipv4"] > 0 {
			base, rel = opened["ipv4"], "vs"
		}
		fd, err := unix.Openat(base, rel, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		opened[d.dir] = fd
		for _, name := range d.files {
			b, err := f.readFile(fd, name)
			if err != nil && !errors.Is(err, unix.ENOENT) {
				return err
			}
			if name == "nf_conntrack_count" {
				f.conntrack = atoi(b)
			}
		}
	}
	for _, p := range []string{"/proc/thread-self/net/sockstat", "/proc/thread-self/net/sockstat6"} {
		b, err := f.readFile(unix.AT_FDCWD, p)
		if err != nil {
			return err
		}
		f.sockets += inuse(b)
	}
	return nil
}

// readFile reads a small file relative to dirfd into f.buf.
func (f *floorReader) readFile(dirfd int, path string) ([]byte, error) {
	fd, err := unix.Openat(dirfd, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	f.files++
	n := 0
	for n < len(f.buf) {
		m, err := unix.Read(fd, f.buf[n:])
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return f.buf[:n], nil
}

// inuse sums the "inuse" counts of the TCP/UDP lines of sockstat.
func inuse(b []byte) int {
	total := 0
	for len(b) > 0 {
		line := b
		if i := indexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > 3 && (string(line[:4]) == "TCP:" || string(line[:4]) == "UDP:" || (len(line) > 4 && (string(line[:5]) == "TCP6:" || string(line[:5]) == "UDP6:"))) {
			if i := indexOf(line, " inuse "); i >= 0 {
				total += atoi(line[i+7:])
			}
		}
	}
	return total
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

func atoi(b []byte) int {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func socket(family int) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, family)
	if err != nil {
		return 0, fmt.Errorf("netlink socket %d: %w", family, err)
	}
	return fd, nil
}

// genlGetFamily is a CTRL_CMD_GETFAMILY request body for name.
func genlGetFamily(name string) []byte {
	alen := 4 + len(name) + 1
	b := make([]byte, 4+(alen+3)&^3)
	b[0], b[1] = unix.CTRL_CMD_GETFAMILY, 1
	binary.NativeEndian.PutUint16(b[4:], uint16(alen))
	binary.NativeEndian.PutUint16(b[6:], unix.CTRL_ATTR_FAMILY_NAME)
	copy(b[8:], name)
	return b
}

// dump sends one request and receives its replies into f.buf until
// NLMSG_DONE (or the NLMSG_ERROR/ack of a non-dump request); each reply
// message is handed to fn when fn is not nil.
func (f *floorReader) dump(fd int, typ uint16, flags uint16, body []byte, fn func(typ uint16, data []byte)) error {
	f.seq++
	req := make([]byte, unix.SizeofNlMsghdr+len(body))
	*(*unix.NlMsghdr)(unsafe.Pointer(&req[0])) = unix.NlMsghdr{Len: uint32(len(req)), Type: typ,
		Flags: unix.NLM_F_REQUEST | flags, Seq: f.seq}
	copy(req[unix.SizeofNlMsghdr:], body)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	f.reqs++
	for {
		n, _, err := unix.Recvfrom(fd, f.buf, 0)
		if err != nil {
			return err
		}
		f.bytes += int64(n)
		b := f.buf[:n]
		for len(b) >= unix.SizeofNlMsghdr {
			h := (*unix.NlMsghdr)(unsafe.Pointer(&b[0]))
			l := int(h.Len)
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return fmt.Errorf("bad netlink length %d", l)
			}
			switch h.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if e := int32(binary.NativeEndian.Uint32(b[unix.SizeofNlMsghdr:])); e != 0 {
					return unix.Errno(-e)
				}
				return nil
			default:
				if fn != nil {
					fn(h.Type, b[unix.SizeofNlMsghdr:l])
				}
				if flags&unix.NLM_F_DUMP == 0 {
					return nil // a single answer
				}
			}
			b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
		}
	}
}

// linkKinds notes whether a link needs the FDB dump: a bridge port
// (IFLA_MASTER) or a bridge or VXLAN device (IFLA_LINKINFO's kind).
func (f *floorReader) linkKinds(typ uint16, data []byte) {
	if f.fdb || typ != unix.RTM_NEWLINK || len(data) < unix.SizeofIfInfomsg {
		return
	}
	forAttrs(data[unix.SizeofIfInfomsg:], func(t uint16, v []byte) {
		switch t {
		case unix.IFLA_MASTER:
			f.fdb = true
		case unix.IFLA_LINKINFO:
			forAttrs(v, func(t uint16, v []byte) {
				if t == unix.IFLA_INFO_KIND && (string(v) == "bridge\x00" || string(v) == "vxlan\x00") {
					f.fdb = true
				}
			})
		}
	})
}

func forAttrs(b []byte, fn func(t uint16, v []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		t := binary.NativeEndian.Uint16(b[2:]) & 0x3fff
		if l < 4 || l > len(b) {
			return
		}
		fn(t, b[4:l])
		b = b[min(len(b), (l+3)&^3):]
	}
}
