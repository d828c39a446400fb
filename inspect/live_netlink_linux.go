package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A small raw netlink dumper for the two requests the library helpers
// make too costly: sock_diag with a state filter, and RTM_GETLINK whose
// IFLA_AF_SPEC carries every link's IPv4 devconf (rp_filter,
// route_localnet), which spares two /proc/sys opens per link.

var nlSeq atomic.Uint32

// recvBufs are nlDump's receive buffers (what one datagram can hold):
// reused, not made for every dump.
var recvBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// errDumpInterrupted is a dump the kernel flagged NLM_F_DUMP_INTR: the
// table changed while it was dumped; read it again.
var errDumpInterrupted = errors.New("netlink dump interrupted")

// nlDump sends one dump request (typ with body) on fd and calls f with
// every reply message's type and payload until NLMSG_DONE. f may keep the
// payload.
func nlDump(fd int, typ uint16, body []byte, f func(typ uint16, data []byte)) error {
	if fd <= 0 {
		return errors.New("no netlink socket")
	}
	bp := recvBufs.Get().(*[]byte)
	defer recvBufs.Put(bp)
	// Parsed values may keep slices of the payload (LinkDeserialize
	// does): each datagram gets its own copy.
	intr, err := nlRoundTrip(fd, typ, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, body, *bp, true,
		func(typ uint16, data []byte) bool { f(typ, data); return false })
	if err == nil && intr {
		return errDumpInterrupted
	}
	return err
}

type netlinkMsg struct {
	Header unix.NlMsghdr
	Data   []byte
}

// parseNetlink splits a datagram into messages; a length that runs past
// the datagram is an error.
func parseNetlink(b []byte) ([]netlinkMsg, error) {
	var out []netlinkMsg
	for len(b) >= unix.SizeofNlMsghdr {
		h := *(*unix.NlMsghdr)(unsafe.Pointer(&b[0]))
		if int(h.Len) < unix.SizeofNlMsghdr || int(h.Len) > len(b) {
			return nil, fmt.Errorf("netlink message length %d of %d bytes", h.Len, len(b))
		}
		out = append(out, netlinkMsg{Header: h, Data: b[unix.SizeofNlMsghdr:h.Len]})
		l := (int(h.Len) + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return out, nil
}

// nlExchange sends one request (typ with flags and body) on fd and reads
// replies into buf, handing f each message of its sequence until f says
// it was the answer, an NLMSG_DONE or an NLMSG_ERROR (an error unless 0).
// f must not keep the payload.
func nlExchange(fd int, typ, flags uint16, body, buf []byte, f func(typ uint16, data []byte) (done bool)) error {
	_, err := nlRoundTrip(fd, typ, flags, body, buf, false, f)
	return err
}

// nlRoundTrip is nlExchange; with copyData each datagram is copied out of
// buf before f sees it (f may keep the payload). intr: the replies ended
// with NLMSG_DONE and one was flagged NLM_F_DUMP_INTR.
func nlRoundTrip(fd int, typ, flags uint16, body, buf []byte, copyData bool, f func(typ uint16, data []byte) (done bool)) (intr bool, err error) {
	seq := nlSeq.Add(1)
	req := make([]byte, unix.SizeofNlMsghdr+len(body))
	*(*unix.NlMsghdr)(unsafe.Pointer(&req[0])) = unix.NlMsghdr{Len: uint32(len(req)), Type: typ, Flags: flags, Seq: seq}
	copy(req[unix.SizeofNlMsghdr:], body)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, fmt.Errorf("send: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return false, fmt.Errorf("receive: %w", err)
		}
		data := buf[:n]
		if copyData {
			data = append([]byte(nil), data...)
		}
		msgs, err := parseNetlink(data)
		if err != nil {
			return false, fmt.Errorf("reply: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return intr, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
						return false, unix.Errno(-e)
					}
				}
				return false, nil
			default:
				if f(m.Header.Type, m.Data) {
					return false, nil
				}
			}
		}
	}
}

// forNlAttrs calls f with each netlink attribute of b (type without the
// NLA_F_NESTED and byte-order flags) until b ends or an attribute's
// length is impossible.
func forNlAttrs(b []byte, f func(typ uint16, v []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			return
		}
		f(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[4:l])
		b = b[min(len(b), (l+3)&^3):]
	}
}
