package mesh

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/miekg/dns"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// resolverServer is one task's embedded DNS server, as dockerd runs it: a
// UDP and a TCP socket on 127.0.0.11 inside the task's namespace, on the
// ports the task's DOCKER_OUTPUT rules DNAT port 53 to.
type resolverServer struct {
	task   string
	netns  string
	ports  dockerrules.Resolver
	names  dnsNames
	logger *log.Logger
	mode   string
	stop   func()
}

// set puts the server in mode: TaskServe (listening, answering) or
// TaskStop (sockets closed).
func (r *resolverServer) set(mode string) error {
	if mode == r.mode {
		return nil
	}
	switch mode {
	case TaskStop:
		if r.stop != nil {
			r.stop()
			r.stop = nil
		}
		r.mode = TaskStop
		return nil
	case TaskServe:
	default:
		return fmt.Errorf("resolver of task %s: unknown mode %q", r.task, mode)
	}
	stop, err := r.open()
	if err != nil {
		return err
	}
	r.stop, r.mode = stop, TaskServe
	return nil
}

// open listens in the task's namespace and serves until the returned stop
// is called.
func (r *resolverServer) open() (func(), error) {
	udpAddr := netip.AddrPortFrom(dockerrules.ResolverIP, uint16(r.ports.UDPPort)).String()
	tcpAddr := netip.AddrPortFrom(dockerrules.ResolverIP, uint16(r.ports.TCPPort)).String()
	var (
		pc net.PacketConn
		ln net.Listener
	)
	err := netnsx.Do(r.netns, func() (err error) {
		if pc, err = net.ListenPacket("udp4", udpAddr); err != nil {
			return fmt.Errorf("udp %s: %w", udpAddr, err)
		}
		if ln, err = net.Listen("tcp4", tcpAddr); err != nil {
			pc.Close()
			return fmt.Errorf("tcp %s: %w", tcpAddr, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("resolver of task %s: listen in %s: %w", r.task, r.netns, err)
	}
	var wg sync.WaitGroup
	var servers []*dns.Server
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: r.names}, {Listener: ln, Handler: r.names}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				r.logger.Printf("resolver of task %s: %v", r.task, err)
			}
		}()
		<-started // Shutdown refuses a server that has not started
		servers = append(servers, srv)
	}
	return func() {
		for _, srv := range servers {
			srv.Shutdown()
		}
		pc.Close()
		ln.Close()
		wg.Wait()
	}, nil
}

// gossipServer is a node's gossip port (NetworkDB's memberlist on TCP and
// UDP 7946 in the node's root namespace): it answers a TCP connection
// with "NODE gossip" and a datagram with the node's name, so the port is
// real and a probe can tell which node answered.
type gossipServer struct {
	node, netns string
	ln          net.Listener
	pc          net.PacketConn
	wg          sync.WaitGroup
}

func (g *gossipServer) open() error {
	addr := ":" + strconv.Itoa(addrplan.GossipPort)
	err := netnsx.Do(g.netns, func() (err error) {
		if g.ln, err = net.Listen("tcp4", addr); err != nil {
			return fmt.Errorf("tcp %s: %w", addr, err)
		}
		if g.pc, err = net.ListenPacket("udp4", addr); err != nil {
			g.ln.Close()
			return fmt.Errorf("udp %s: %w", addr, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gossip port of %s: listen in %s: %w", g.node, g.netns, err)
	}
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		for {
			c, err := g.ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(g.node + " gossip\n"))
			c.Close()
		}
	}()
	go func() {
		defer g.wg.Done()
		buf := make([]byte, 1500)
		for {
			_, from, err := g.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			g.pc.WriteTo([]byte(g.node+"\n"), from)
		}
	}()
	return nil
}

func (g *gossipServer) close() {
	if g.ln != nil {
		g.ln.Close()
		g.pc.Close()
		g.wg.Wait()
	}
}
