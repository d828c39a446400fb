package fault_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// csumCapture counts the TCP segments an AF_PACKET socket on one link of
// one namespace receives (not those it sends): those whose checksum is wrong although the
// kernel marks them complete (no TP_STATUS_CSUMNOTREADY: what a detector
// must flag), and those whose checksum is merely not computed yet
// (TP_STATUS_CSUMNOTREADY: what it must not).
type csumCapture struct {
	fd   int
	done chan struct{}
	mu   sync.Mutex
	// bad: complete and wrong; partial: not computed yet; good:
	// complete and right.
	bad, partial, good int
}

// captureCsum opens the socket on dev inside netns and reads until stop.
func captureCsum(netns, dev string) (*csumCapture, error) {
	c := &csumCapture{done: make(chan struct{})}
	err := netnsx.Do(netns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		if c.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(c.fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			unix.Close(c.fd)
			return err
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(c.fd)
			return err
		}
		return unix.Bind(c.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		return nil, fmt.Errorf("capture on %s in %s: %w", dev, netns, err)
	}
	go c.run()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *csumCapture) run() {
	defer close(c.done)
	buf := make([]byte, 65536)
	oob := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{}))))
	for {
		n, oobn, _, from, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return // closed
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // received segments only: what came in from the wire
		}
		status := uint32(0)
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= 4 {
					status = binary.NativeEndian.Uint32(m.Data)
				}
			}
		}
		ok, isTCP := tcpChecksumOK(buf[:n])
		if !isTCP {
			continue
		}
		c.mu.Lock()
		switch {
		case status&unix.TP_STATUS_CSUMNOTREADY != 0:
			c.partial++
		case ok:
			c.good++
		default:
			c.bad++
		}
		c.mu.Unlock()
	}
}

// stop closes the socket and returns the counts.
func (c *csumCapture) stop() (bad, partial, good int) {
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	unix.Close(c.fd)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad, c.partial, c.good
}

// tcpChecksumOK verifies the TCP checksum of an Ethernet/IPv4/TCP frame;
// isTCP says whether it is one (unfragmented).
func tcpChecksumOK(f []byte) (ok, isTCP bool) {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return false, false
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[9] != 6 || ihl < 20 || total > len(ip) || total < ihl+20 || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return false, false
	}
	seg := ip[ihl:total]
	var sum uint32
	for _, b := range [][]byte{ip[12:20], seg} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	sum += 6 + uint32(len(seg))
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff, true
}
