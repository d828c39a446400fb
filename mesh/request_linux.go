package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// Reply is a task server's answer.
type Reply struct {
	Task string // first line of the body: the task that answered
	Body string
}

// Ask sends one request from inside the namespace at netnsPath to addr
// (host:port) and returns the answer: an HTTP GET for tcp (path may carry
// a query, e.g. "/?size=4000"), one datagram for udp. Each call uses a new
// connection (a new source port), so each is a new connection for the
// load balancer.
func Ask(ctx context.Context, netnsPath, proto, addr, path string) (Reply, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
	}
	conn, err := dialIn(ctx, netnsPath, proto, addr)
	if err != nil {
		return Reply{}, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var body string
	if proto == "udp" {
		if _, err := conn.Write([]byte("meshtrace\n")); err != nil {
			return Reply{}, fmt.Errorf("udp %s from %s: %w", addr, netnsPath, err)
		}
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			return Reply{}, fmt.Errorf("udp %s from %s: %w", addr, netnsPath, err)
		}
		body = string(buf[:n])
	} else {
		if path == "" {
			path = "/"
		}
		tr := &http.Transport{
			DialContext:       func(context.Context, string, string) (net.Conn, error) { return conn, nil },
			DisableKeepAlives: true,
		}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return Reply{}, err
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return Reply{}, fmt.Errorf("tcp %s from %s: %w", addr, netnsPath, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return Reply{}, fmt.Errorf("tcp %s from %s: read body: %w", addr, netnsPath, err)
		}
		if resp.StatusCode != http.StatusOK {
			return Reply{}, fmt.Errorf("tcp %s from %s: %s", addr, netnsPath, resp.Status)
		}
		body = string(b)
	}
	task, _, _ := strings.Cut(body, "\n")
	return Reply{Task: task, Body: body}, nil
}

var udpPort atomic.Uint32

// nextUDPPort walks 33000-60999 from a random start.
func nextUDPPort() int {
	const lo, n = 33000, 28000
	udpPort.CompareAndSwap(0, uint32(rand.IntN(n))+1)
	return lo + int(udpPort.Add(1))%n
}

// dialIn creates the socket inside the namespace (a socket belongs to the
// namespace it was created in); the connect and the I/O then happen from
// any thread.
func dialIn(ctx context.Context, netnsPath, proto, addr string) (net.Conn, error) {
	var conn net.Conn
	network := "tcp4"
	if proto == "udp" {
		network = "udp4"
	}
	err := netnsx.Do(netnsPath, func() error {
		if proto != "udp" {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		}
		// The kernel picks UDP source ports at random, and a port reused
		// within conntrack's timeout would be the old flow, pinned to its
		// old backend. Walk the ephemeral range instead.
		var err error
		for range 64 {
			d := net.Dialer{LocalAddr: &net.UDPAddr{Port: nextUDPPort()}}
			if conn, err = d.DialContext(ctx, network, addr); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
				return err
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s from %s: %w", proto, addr, netnsPath, err)
	}
	return conn, nil
}
