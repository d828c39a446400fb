package capture

import (
	"errors"
	"fmt"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/trace"
)

// AFPacket opens TPACKET_V3 AF_PACKET sockets with gopacket/afpacket (no
// libpcap, no cgo). Each socket is created inside its point's namespace
// (the socket stays bound to it), bound to the interface, and gets its
// kernel BPF filter before it is handed out.
type AFPacket struct {
	// BlockSize and Blocks size each socket's ring (default 128 KiB x
	// 16 = 2 MiB). A block is handed over when full or after 8 ms, so at
	// low rates the ring holds Blocks x 8 ms of traffic.
	BlockSize, Blocks int
	// Modules is the module gate asked before the first socket (an
	// AF_PACKET socket loads a missing af_packet, kmod.NeedAFPacket);
	// nil = kmod.Host().
	Modules kmod.Gate
}

var _ Opener = AFPacket{}

// Open implements Opener.
func (a AFPacket) Open(p trace.Point, dir trace.Dir, prog []bpf.RawInstruction) (Socket, error) {
	g := a.Modules
	if g == nil {
		g = kmod.Host()
	}
	if err := kmod.NeedAFPacket.Check(g); err != nil {
		return nil, fmt.Errorf("netns %s: capture on %s (%s): %w", p.Netns, p.Ifname, dir, err)
	}
	bs, nb := a.BlockSize, a.Blocks
	if bs <= 0 {
		bs = 128 << 10
	}
	if nb <= 0 {
		nb = 16
	}
	var tp *afpacket.TPacket
	err := netnsx.Do(p.Path, func() error {
		var err error
		tp, err = afpacket.NewTPacket(
			afpacket.OptInterface(p.Ifname),
			afpacket.TPacketVersion3,
			afpacket.OptFrameSize(4096),
			afpacket.OptBlockSize(bs),
			afpacket.OptNumBlocks(nb),
			afpacket.OptBlockTimeout(8*time.Millisecond),
			afpacket.OptPollTimeout(50*time.Millisecond),
		)
		if err != nil {
			return err
		}
		if err := tp.SetBPF(prog); err != nil {
			tp.Close()
			return fmt.Errorf("attach filter: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: capture on %s (%s): %w", p.Netns, p.Ifname, dir, err)
	}
	return &afSocket{tp: tp}, nil
}

type afSocket struct {
	tp *afpacket.TPacket
	// drops as read when the socket closed: the kernel's counters go
	// with the socket, and trace reads them once it is closed.
	drops  uint64
	closed bool
}

func (s *afSocket) Next() ([]byte, time.Time, error) {
	data, ci, err := s.tp.ZeroCopyReadPacketData()
	if errors.Is(err, afpacket.ErrTimeout) {
		return nil, time.Time{}, ErrTimeout
	}
	return data, ci.Timestamp, err
}

// Drops is the kernel's count of packets the ring had no room for
// (PACKET_STATISTICS, summed by afpacket across reads: reading resets
// the kernel's).
func (s *afSocket) Drops() uint64 {
	if s.closed {
		return s.drops
	}
	if _, v3, err := s.tp.SocketStats(); err == nil {
		s.drops = uint64(v3.Drops())
	}
	return s.drops
}

// Close reads the drops first: afterwards the socket is gone, and with it
// the counters (a closed socket read as 0 drops, whatever the kernel
// dropped).
func (s *afSocket) Close() error {
	if !s.closed {
		s.Drops()
		s.closed = true
		s.tp.Close()
	}
	return nil
}
