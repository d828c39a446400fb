package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
)

// maxSightings bounds what a checksum watch keeps.
const maxSightings = 50000

// ChecksumWatch records, at each of its points, the TCP/UDP checksum of
// every frame the point receives (CheckL4; at an "uplink" point only
// what VXLAN carries), with the kernel's verdict on
// it: the status of PACKET_AUXDATA, which the TPACKET_V3 ring of the
// trace capture (gopacket/afpacket) does not hand out. A frame marked
// TP_STATUS_CSUMNOTREADY is recorded as not ready, never as wrong.
type ChecksumWatch struct {
	mu        sync.Mutex
	sightings []topology.ChecksumSighting
	fds       []int
	stopped   atomic.Bool
	wg        sync.WaitGroup
	stopOnce  sync.Once
}

// WatchChecksums opens one socket per point, in order: a point's place
// in points is its hop's order on the packets' way.
func WatchChecksums(points []trace.Point, g kmod.Gate) (*ChecksumWatch, error) {
	if g == nil {
		g = kmod.Host()
	}
	if err := kmod.NeedAFPacket.Check(g); err != nil {
		return nil, fmt.Errorf("checksum capture: %w", err)
	}
	w := &ChecksumWatch{}
	for i, p := range points {
		fd, err := openAuxSocket(p)
		if err != nil {
			w.Stop()
			return nil, err
		}
		w.fds = append(w.fds, fd)
		w.wg.Add(1)
		go w.read(fd, i, p)
	}
	return w, nil
}

// openAuxSocket is an AF_PACKET socket bound to the point's interface in
// its namespace, with PACKET_AUXDATA on and a read timeout.
func openAuxSocket(p trace.Point) (int, error) {
	fd := -1
	err := netnsx.Do(p.Path, func() error {
		ifi, err := net.InterfaceByName(p.Ifname)
		if err != nil {
			return err
		}
		all := htons(unix.ETH_P_ALL)
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(all)); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		err = errors.Join(
			unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1),
			unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
			unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: all, Ifindex: ifi.Index}))
		if err != nil {
			unix.Close(fd)
			fd = -1
		}
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("netns %s: checksum capture on %s: %w", p.Netns, p.Ifname, err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read records what fd receives until the socket is shut down.
func (w *ChecksumWatch) read(fd, order int, p trace.Point) {
	defer w.wg.Done()
	buf := make([]byte, 65536)
	oob := make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{}))))
	hop := p.Label("")
	for {
		n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
		if w.stopped.Load() {
			return
		}
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue // the read timeout: look at stopped again
		}
		if err != nil {
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // what arrives at the hop, not what leaves it
		}
		c, ok := CheckL4(buf[:n], auxStatus(oob[:oobn]))
		if !ok || (p.Role == "uplink" && !c.VXLAN) {
			continue // on the underlay, only the overlay's packets
		}
		w.mu.Lock()
		if len(w.sightings) < maxSightings {
			w.sightings = append(w.sightings, topology.ChecksumSighting{Packet: c.Packet, Order: order,
				Hop: hop, Netns: p.Netns, Proto: c.Proto, Valid: c.Valid, NotReady: c.NotReady})
		}
		w.mu.Unlock()
	}
}

// auxStatus is tp_status of a PACKET_AUXDATA control message, 0 without one.
func auxStatus(oob []byte) uint32 {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data)
		}
	}
	return 0
}

// Stop closes the sockets and returns what they saw.
func (w *ChecksumWatch) Stop() []topology.ChecksumSighting {
	w.stopOnce.Do(func() {
		w.stopped.Store(true) // the readers see it within their read timeout
		w.wg.Wait()
		for _, fd := range w.fds {
			unix.Close(fd)
		}
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sightings
}
