package benchtrace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// Gen is a UDP load generator: Sockets connected UDP sockets opened in a
// namespace (one flow each), sendmmsg batches paced to a rate by a few
// sender goroutines, recvmmsg readers counting the replies. One loop of
// new TCP connections (the load of the first round) tops out at ~2,500
// connections/s here; datagrams in batches cost a few system calls per 64
// packets, so the mesh and the capture, not the generator, are what a
// rate ladder finds the limit of (Ceiling measures the generator alone).
type Gen struct {
	// Netns is the namespace file to send from.
	Netns string
	// To is where to send (the published port).
	To string
	// Sockets is the number of sockets, i.e. flows (default 32).
	Sockets int
	// Senders is the number of sending goroutines (default 2).
	Senders int
	// Size is the datagram payload size (default 64, at least 16).
	Size int
}

// GenResult is what one run sent and got back.
type GenResult struct {
	Sent, Answered int64
	Duration       time.Duration
}

// SentRate is datagrams sent per second.
func (r GenResult) SentRate() float64 { return float64(r.Sent) / r.Duration.Seconds() }

// PPS is the packets per second through the mesh, both ways: datagrams
// sent and replies received.
func (r GenResult) PPS() float64 { return float64(r.Sent+r.Answered) / r.Duration.Seconds() }

const batch = 64

// Run sends rate datagrams per second (0: as fast as it can) for d, then
// waits up to 500 ms for the last replies.
func (g Gen) Run(ctx context.Context, rate float64, d time.Duration) (GenResult, error) {
	if g.Sockets <= 0 {
		g.Sockets = 32
	}
	if g.Senders <= 0 {
		g.Senders = 2
	}
	g.Senders = min(g.Senders, g.Sockets)
	if g.Size < 16 {
		g.Size = 64
	}
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Sockets belong to the namespace they are made in; they stay there
	// once the thread leaves it.
	err := netnsx.Do(g.Netns, func() error {
		for range g.Sockets {
			c, err := net.Dial("udp4", g.To)
			if err != nil {
				return err
			}
			uc := c.(*net.UDPConn)
			uc.SetReadBuffer(4 << 20)
			uc.SetWriteBuffer(4 << 20)
			conns = append(conns, uc)
		}
		return nil
	})
	if err != nil {
		return GenResult{}, fmt.Errorf("load generator in %s: %w", g.Netns, err)
	}
	var sent, answered atomic.Int64
	var wg sync.WaitGroup
	// Readers: one per socket, until the sockets are closed.
	rctx, stopReaders := context.WithCancel(context.Background())
	defer stopReaders()
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := ipv4.NewPacketConn(c)
			ms := make([]ipv4.Message, batch)
			for i := range ms {
				ms[i].Buffers = [][]byte{make([]byte, 2048)}
			}
			for rctx.Err() == nil {
				c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				// x/net returns n = -1 when the deadline ends a
				// wait that followed an EAGAIN.
				n, err := pc.ReadBatch(ms, 0)
				answered.Add(int64(max(n, 0)))
				if err != nil && !isTimeout(err) {
					return
				}
			}
		}()
	}
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var serr error
	var errOnce sync.Once
	var swg sync.WaitGroup
	for s := range g.Senders {
		mine := conns[s*len(conns)/g.Senders : (s+1)*len(conns)/g.Senders]
		swg.Add(1)
		go func() {
			defer swg.Done()
			pcs := make([]*ipv4.PacketConn, len(mine))
			for i, c := range mine {
				pcs[i] = ipv4.NewPacketConn(c)
			}
			ms := make([]ipv4.Message, batch)
			bufs := make([]byte, batch*g.Size)
			for i := range ms {
				ms[i].Buffers = [][]byte{bufs[i*g.Size : (i+1)*g.Size]}
			}
			perSender := rate / float64(g.Senders)
			var mySent int64
			next := 0
			for sctx.Err() == nil {
				n := batch
				if rate > 0 {
					due := int64(perSender*time.Since(start).Seconds()) - mySent
					if due <= 0 {
						time.Sleep(200 * time.Microsecond)
						continue
					}
					n = int(min(due, batch))
				}
				for i := range n {
					b := ms[i].Buffers[0]
					binary.BigEndian.PutUint64(b, uint64(mySent)+uint64(i))
					binary.BigEndian.PutUint64(b[8:], uint64(s))
				}
				pc := pcs[next]
				next = (next + 1) % len(pcs)
				k, err := pc.WriteBatch(ms[:n], 0)
				k = max(k, 0)
				mySent += int64(k)
				sent.Add(int64(k))
				if err != nil {
					errOnce.Do(func() { serr = err })
					return
				}
			}
		}()
	}
	swg.Wait()
	dur := time.Since(start)
	// The last replies are on their way.
	time.Sleep(500 * time.Millisecond)
	stopReaders()
	for _, c := range conns {
		c.SetReadDeadline(time.Now())
	}
	wg.Wait()
	r := GenResult{Sent: sent.Load(), Answered: answered.Load(), Duration: dur}
	if serr != nil {
		return r, fmt.Errorf("load generator: send: %w", serr)
	}
	return r, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Ceiling is the generator alone: as fast as it can for d, in netns, to
// a UDP sink on that namespace's loopback that reads (recvmmsg) and
// answers nothing. It returns datagrams sent per second.
func Ceiling(netns string, d time.Duration) (float64, error) {
	var sink *net.UDPConn
	err := netnsx.Do(netns, func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		sink = c
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sink in %s: %w", netns, err)
	}
	sink.SetReadBuffer(8 << 20)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pc := ipv4.NewPacketConn(sink)
		ms := make([]ipv4.Message, batch)
		for i := range ms {
			ms[i].Buffers = [][]byte{make([]byte, 2048)}
		}
		for {
			if _, err := pc.ReadBatch(ms, 0); err != nil {
				return
			}
		}
	}()
	r, err := Gen{Netns: netns, To: sink.LocalAddr().String()}.Run(context.Background(), 0, d)
	sink.Close()
	<-done
	return r.SentRate(), err
}
