package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/topology"
)

// kernelSockets lists listening sockets over sock_diag with a
// NETLINK_INET_DIAG socket opened in the target: TCP in LISTEN, UDP bound
// without a peer. The requests carry a state filter, so the kernel skips
// the (large, node-wide) established-connection hash entirely; a namespace
// whose sockstat says it has no TCP or UDP socket is not asked at all, and
// none is while the module gate says a request would load inet_diag,
// tcp_diag or udp_diag (kmod.NeedSockets).
type kernelSockets struct{}

var _ SocketReader = kernelSockets{}

const (
	tcpListen = 10 // TCP_LISTEN
	tcpClose  = 7  // TCP_CLOSE: an unconnected UDP socket
)

func (kernelSockets) ReadSockets(t *Target) ([]topology.Socket, error) {
	out := []topology.Socket{}
	if t.hints.sockets == 0 {
		return out, nil
	}
	if err := kmod.NeedSockets.Check(t.gate()); err != nil {
		return nil, err
	}
	if _, err := t.handle(); err != nil {
		return nil, err
	}
	var errs []error
	for _, q := range []struct {
		proto  string
		ipp    uint8
		states uint32
	}{{"tcp", unix.IPPROTO_TCP, 1 << tcpListen}, {"udp", unix.IPPROTO_UDP, 1 << tcpClose}} {
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			msgs, err := inetDiagDump(t.res.diag, fam, q.ipp, q.states)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s sockets (family %d): %w", q.proto, fam, err))
				continue
			}
			for _, m := range msgs {
				if q.proto == "udp" && m.dport != 0 {
					continue
				}
				out = append(out, topology.Socket{Proto: q.proto, Addr: m.src, Port: int(m.sport)})
			}
		}
	}
	sortSockets(out)
	return out, errors.Join(errs...)
}

// inetDiagReqV2 is struct inet_diag_req_v2.
type inetDiagReqV2 struct {
	Family   uint8
	Protocol uint8
	Ext      uint8
	Pad      uint8
	States   uint32
	ID       [48]byte // struct inet_diag_sockid, zero: no filter
}

const (
	sizeofInetDiagReq = int(unsafe.Sizeof(inetDiagReqV2{}))
	sizeofInetDiagMsg = 72 // struct inet_diag_msg
	sockDiagByFamily  = 20 // SOCK_DIAG_BY_FAMILY
)

// diagMsg is what meshtrace uses of a struct inet_diag_msg.
type diagMsg struct {
	state        uint8
	sport, dport uint16
	src          netip.Addr
}

// inetDiagDump sends one sock_diag dump request on fd and collects the
// replies.
func inetDiagDump(fd int, family, proto uint8, states uint32) ([]diagMsg, error) {
	req := make([]byte, sizeofInetDiagReq)
	*(*inetDiagReqV2)(unsafe.Pointer(&req[0])) = inetDiagReqV2{Family: family, Protocol: proto, States: states}
	var out []diagMsg
	err := nlDump(fd, sockDiagByFamily, req, func(typ uint16, data []byte) {
		if typ != sockDiagByFamily {
			return
		}
		if d, ok := decodeDiagMsg(data); ok {
			out = append(out, d)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	return out, nil
}

// decodeDiagMsg reads family, state, ports (big endian) and the source
// address of a struct inet_diag_msg.
func decodeDiagMsg(b []byte) (diagMsg, bool) {
	if len(b) < sizeofInetDiagMsg {
		return diagMsg{}, false
	}
	d := diagMsg{state: b[1], sport: binary.BigEndian.Uint16(b[4:6]), dport: binary.BigEndian.Uint16(b[6:8])}
	switch b[0] {
	case unix.AF_INET:
		d.src = netip.AddrFrom4([4]byte(b[8:12]))
	case unix.AF_INET6:
		d.src = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	default:
		return diagMsg{}, false
	}
	return d, true
}
