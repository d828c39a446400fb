package mesh

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// faultKernel is the real FaultKernel of one mesh: iptables-save/-restore
// run inside the namespaces, sysctls written from inside them, rtnetlink,
// IPVS and conntrack netlink sockets opened inside them, and the agent's
// control files.
type faultKernel struct {
	st *State
}

var _ FaultKernel = (*faultKernel)(nil)

// NewFaultKernel returns the real machine for mesh st.
func NewFaultKernel(st *State) (FaultKernel, error) {
	if st.Dir == "" {
		return nil, fmt.Errorf("mesh %s: no directory in the state", st.Name)
	}
	return &faultKernel{st: st}, nil
}

// mine refuses a namespace file that is not one of the mesh's own: a
// fault (or a tampered faults.json) never reaches another namespace, the
// real root one least of all.
func (k *faultKernel) mine(netns string) error {
	rel, err := filepath.Rel(k.st.Dir, filepath.Clean(netns))
	if netns == "" || err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("netns %q is not a namespace of mesh %s (%s)", netns, k.st.Name, k.st.Dir)
	}
	return nil
}

func (k *faultKernel) SaveRules(netns, table string) (string, error) {
	if err := k.mine(netns); err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.Command("iptables-save", "-t", table)
	cmd.Stderr = &stderr
	out, err := netnsx.Output(netns, cmd)
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func (k *faultKernel) RestoreRules(netns, table string, lines []string) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	in := "*" + table + "\n" + strings.Join(lines, "\n") + "\nCOMMIT\n"
	var out bytes.Buffer
	cmd := exec.Command("iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(in)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := netnsx.Start(netns, cmd); err != nil {
		return fmt.Errorf("iptables-restore in %s: %w", netns, err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("iptables-restore --noflush in %s: %w: %s", netns, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// /proc/sys/net shows the namespace of the thread that opens the file.
func (k *faultKernel) Sysctl(netns, key string) (string, error) {
	if err := k.mine(netns); err != nil {
		return "", err
	}
	var v string
	err := netnsx.Do(netns, func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

func (k *faultKernel) SysctlGlob(netns, pattern string) (map[string]string, error) {
	if err := k.mine(netns); err != nil {
		return nil, err
	}
	out := map[string]string{}
	err := netnsx.Do(netns, func() error {
		files, err := filepath.Glob(filepath.Join("/proc/sys", pattern))
		if err != nil {
			return err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			out[strings.TrimPrefix(f, "/proc/sys/")] = strings.TrimSpace(string(b))
		}
		return nil
	})
	return out, err
}

func (k *faultKernel) SetSysctl(netns, key, value string) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return netnsx.Do(netns, func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0)
	})
}

// withHandle opens an rtnetlink (or other netlink family) handle inside
// the namespace; the socket keeps talking to it afterwards.
func withHandle(netns string, family int, fn func(*netlink.Handle) error) error {
	var h *netlink.Handle
	err := netnsx.Do(netns, func() error {
		var err error
		h, err = netlink.NewHandle(family)
		return err
	})
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", netns, err)
	}
	defer h.Close()
	return fn(h)
}

func (k *faultKernel) Link(netns, name string) (LinkOp, error) {
	if err := k.mine(netns); err != nil {
		return LinkOp{}, err
	}
	var l LinkOp
	err := withHandle(netns, unix.NETLINK_ROUTE, func(h *netlink.Handle) error {
		link, err := h.LinkByName(name)
		if err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
		a := link.Attrs()
		l = LinkOp{Name: name, MTU: a.MTU, GSOMaxSegs: int(a.GSOMaxSegs)}
		return nil
	})
	return l, err
}

func (k *faultKernel) SetLink(netns string, l LinkOp) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withHandle(netns, unix.NETLINK_ROUTE, func(h *netlink.Handle) error {
		link, err := h.LinkByName(l.Name)
		if err != nil {
			return fmt.Errorf("link %s: %w", l.Name, err)
		}
		if l.MTU > 0 {
			if err := h.LinkSetMTU(link, l.MTU); err != nil {
				return fmt.Errorf("link %s mtu %d: %w", l.Name, l.MTU, err)
			}
		}
		if l.GSOMaxSegs > 0 {
			if err := h.LinkSetGSOMaxSegs(link, l.GSOMaxSegs); err != nil {
				return fmt.Errorf("link %s gso_max_segs %d: %w", l.Name, l.GSOMaxSegs, err)
			}
		}
		return nil
	})
}

func (k *faultKernel) FDB(netns, dev string) ([]FDBSpec, error) {
	if err := k.mine(netns); err != nil {
		return nil, err
	}
	var out []FDBSpec
	err := withHandle(netns, unix.NETLINK_ROUTE, func(h *netlink.Handle) error {
		link, err := h.LinkByName(dev)
		if err != nil {
			return fmt.Errorf("link %s: %w", dev, err)
		}
		ns, err := h.NeighList(link.Attrs().Index, unix.AF_BRIDGE)
		if err != nil {
			return fmt.Errorf("fdb dev %s: %w", dev, err)
		}
		for _, n := range ns {
			dst, ok := netipAddr(n.IP)
			if !ok || n.HardwareAddr == nil || n.Flags&netlink.NTF_SELF == 0 {
				continue
			}
			out = append(out, FDBSpec{Dev: dev, MAC: n.HardwareAddr.String(), Dst: dst})
		}
		return nil
	})
	return out, err
}

func (k *faultKernel) SetFDB(netns string, op FDBOp) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withHandle(netns, unix.NETLINK_ROUTE, func(h *netlink.Handle) error {
		link, err := h.LinkByName(op.Dev)
		if err != nil {
			return fmt.Errorf("link %s: %w", op.Dev, err)
		}
		mac, err := net.ParseMAC(op.MAC)
		if err != nil {
			return fmt.Errorf("fdb %s: %w", op.MAC, err)
		}
		n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
			State: netlink.NUD_PERMANENT, IP: op.Dst.AsSlice(), HardwareAddr: mac}
		if op.Delete {
			err = h.NeighDel(n)
		} else {
			err = h.NeighAppend(n)
		}
		if err != nil {
			return fmt.Errorf("fdb %s dev %s dst %s: %w", op.MAC, op.Dev, op.Dst, err)
		}
		return nil
	})
}

// withIPVS opens an IPVS generic netlink socket inside the namespace.
func withIPVS(netns string, fn func(*ipvs.Handle) error) error {
	var h *ipvs.Handle
	err := netnsx.Do(netns, func() error {
		var err error
		h, err = ipvs.New("")
		return err
	})
	if err != nil {
		return fmt.Errorf("ipvs in %s: %w", netns, err)
	}
	defer h.Close()
	return fn(h)
}

func (k *faultKernel) IPVSServices(netns string) ([]IPVSState, error) {
	if err := k.mine(netns); err != nil {
		return nil, err
	}
	var out []IPVSState
	err := withIPVS(netns, func(h *ipvs.Handle) error {
		svcs, err := h.GetServices()
		if err != nil {
			return err
		}
		for _, s := range svcs {
			if s.FWMark == 0 {
				continue
			}
			ds, err := h.GetDestinations(s)
			if err != nil {
				return fmt.Errorf("FWM %d: %w", s.FWMark, err)
			}
			st := IPVSState{FWMark: s.FWMark, Scheduler: s.SchedName}
			for _, d := range ds {
				st.Dests = append(st.Dests, IPVSDestState{Addr: d.Address.String(), Weight: d.Weight})
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

func (k *faultKernel) IPVS(netns string, op IPVSOp) error {
	if err := k.mine(netns); err != nil {
		return err
	}
	return withIPVS(netns, func(h *ipvs.Handle) error {
		svc := &ipvs.Service{FWMark: op.FWMark, AddressFamily: unix.AF_INET, SchedName: op.Scheduler}
		dst := &ipvs.Destination{Address: op.Addr.AsSlice(), Port: 0, Weight: op.Weight,
			ConnectionFlags: ipvs.ConnectionFlagMasq, AddressFamily: unix.AF_INET}
		switch op.Op {
		case IPVSAddService:
			return h.NewService(svc)
		case IPVSDelService:
			return h.DelService(svc)
		case IPVSAddDest:
			return h.NewDestination(svc, dst)
		case IPVSDelDest:
			return h.DelDestination(svc, dst)
		case IPVSSetWeight:
			return h.UpdateDestination(svc, dst)
		}
		return fmt.Errorf("unknown IPVS operation %q", op.Op)
	})
}

func (k *faultKernel) DeleteConntrack(netns, proto string, sport int) (int, error) {
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

func (k *faultKernel) Send(netns, proto, addr string, sport int) (string, error) {
	if err := k.mine(netns); err != nil {
		return "", err
	}
	if proto != "udp" {
		return "", fmt.Errorf("send: only udp datagrams, not %s", proto)
	}
	r, err := sendUDPFrom(netns, addr, sport, 2*time.Second)
	return r.Task, err
}

// sendUDPFrom sends one datagram from local port sport inside the
// namespace and reads the answer.
func sendUDPFrom(netns, addr string, sport int, timeout time.Duration) (Reply, error) {
	var conn net.Conn
	err := netnsx.Do(netns, func() error {
		var err error
		d := net.Dialer{LocalAddr: &net.UDPAddr{Port: sport}}
		conn, err = d.Dial("udp4", addr)
		return err
	})
	if err != nil {
		return Reply{}, fmt.Errorf("udp %s from %s port %d: %w", addr, netns, sport, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte("meshtrace\n")); err != nil {
		return Reply{}, fmt.Errorf("udp %s from %s port %d: %w", addr, netns, sport, err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		return Reply{}, fmt.Errorf("udp %s from %s port %d: %w", addr, netns, sport, err)
	}
	body := string(buf[:n])
	task, _, _ := strings.Cut(body, "\n")
	return Reply{Task: task, Body: body}, nil
}

// SendUDPFrom sends one datagram from the namespace at netnsPath, from
// local port sport, to addr and returns the answer: datagrams from one
// port are one conntrack flow, which is how a stale entry shows.
func SendUDPFrom(netnsPath, addr string, sport int, timeout time.Duration) (Reply, error) {
	return sendUDPFrom(netnsPath, addr, sport, timeout)
}

func (k *faultKernel) SetTaskMode(task, mode string) (string, error) {
	return setTaskMode(k.st, task, mode, 5*time.Second)
}

// netipAddr converts a netlink address; nil and 0.0.0.0 are not one.
func netipAddr(ip net.IP) (netip.Addr, bool) {
	if ip == nil || ip.IsUnspecified() {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// lockFaults takes the mesh's fault lock (one break or repair at a time).
func lockFaults(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "faults.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

var errNoAgent = errors.New("the mesh's agent is not running")
