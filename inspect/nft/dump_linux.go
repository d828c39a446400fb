package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// nlDumper runs netlink dump requests on the socket nftables dialed inside
// the namespace, through its raw fd: one recvmsg per batch into a reused
// buffer (mdlayher/netlink peeks and grows a fresh buffer per batch, which
// dominated the cost of a read).
type nlDumper struct {
	rc  syscall.RawConn
	seq uint32
}

// recvBufs holds 64 KiB receive buffers: larger than any netlink dump
// batch (the kernel caps them at 32 KiB).
var recvBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// dump sends a dump request of msgType for family and calls fn with the
// payload (after the nlmsghdr) of each reply message, in order. The
// payload stays valid after fn returns.
func (n *nlDumper) dump(msgType uint16, family uint8, fn func(data []byte) error) error {
	n.seq++
	seq := n.seq
	var req [unix.NLMSG_HDRLEN + 4]byte
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], msgType)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], seq)
	req[unix.NLMSG_HDRLEN] = family
	req[unix.NLMSG_HDRLEN+1] = unix.NFNETLINK_V0
	var serr error
	if err := n.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN && serr != unix.EINTR
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("send: %w", serr)
	}
	bp := recvBufs.Get().(*[]byte)
	defer recvBufs.Put(bp)
	buf := *bp
	for {
		var nr, flags int
		var rerr error
		if err := n.rc.Read(func(fd uintptr) bool {
			nr, _, flags, _, rerr = unix.Recvmsg(int(fd), buf, nil, 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		}); err != nil {
			return err
		}
		if rerr != nil {
			return fmt.Errorf("receive: %w", rerr)
		}
		if flags&unix.MSG_TRUNC != 0 {
			return errors.New("receive: netlink message truncated")
		}
		// Copy out the batch: the payloads handed to fn must outlive the
		// buffer, which the next batch overwrites.
		batch := append([]byte(nil), buf[:nr]...)
		done, err := walkBatch(batch, seq, fn)
		if err != nil || done {
			return err
		}
	}
}

// walkBatch calls fn for each message of one received batch; done is true
// at NLMSG_DONE. A netlink error message becomes an error.
func walkBatch(b []byte, seq uint32, fn func(data []byte) error) (done bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		typ := binary.NativeEndian.Uint16(b[4:])
		mseq := binary.NativeEndian.Uint32(b[8:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false, fmt.Errorf("malformed netlink message of length %d in %d bytes", l, len(b))
		}
		data := b[unix.NLMSG_HDRLEN:l:l]
		if mseq != seq {
			return false, fmt.Errorf("netlink reply sequence %d, want %d", mseq, seq)
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(data) >= 4 {
				if errno := int32(binary.NativeEndian.Uint32(data)); errno != 0 {
					return false, fmt.Errorf("netlink: %w", syscall.Errno(-errno))
				}
			}
			return true, nil
		case unix.NLMSG_NOOP:
		default:
			if err := fn(data); err != nil {
				return false, err
			}
		}
		al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if al >= len(b) {
			break
		}
		b = b[al:]
	}
	return false, nil
}
