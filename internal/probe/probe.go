// Package probe is meshtrace's one probe client: one request from inside a
// network namespace (through internal/netnsx) to an address and port, as a
// user's client would make it. TCP makes a new connection and an HTTP GET;
// UDP sends one datagram and reads the answer.
//
// Every UDP probe leaves from a source port of its own. The kernel picks
// UDP source ports at random, and a port reused within conntrack's timeout
// is the old flow, still pinned to the backend it had: a probe from it
// would test yesterday's load-balancing decision. So the probes walk the
// ephemeral range instead (nextPort), and a caller that wants one flow
// again (a stale conntrack entry) names its port (Request.SPort).
//
// The mesh's requests and faults, doctor's --probe and trace's --probe
// use it.
package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Mode says what counts as an answer.
type Mode int

const (
	// Answered: tcp, an HTTP GET gets a response (of any status, see
	// Answer.Status); udp, the datagram gets one back.
	Answered Mode = iota
	// Reached: tcp, the handshake completes (nothing is sent: the
	// application's protocol is unknown); udp, no ICMP port unreachable
	// comes back before the deadline (a server may rightly ignore the
	// datagram, so silence is no failure).
	Reached
)

// Request is one probe.
type Request struct {
	// Netns is the namespace file to open the socket in ("" = the
	// caller's own); Name names it in errors ("" = Netns).
	Netns, Name string
	Proto       string // "tcp" or "udp"
	To          netip.AddrPort
	// Path is the GET's path and query (tcp; "" = "/").
	Path string
	// Payload is the datagram (udp; "" = "meshtrace\n").
	Payload string
	// SPort is the UDP source port (0 = the next of the walk).
	SPort uint16
	Mode  Mode
}

// Answer is what came back.
type Answer struct {
	Local  netip.AddrPort // the probe's own end
	Status int            // tcp, Answered: the HTTP status code
	Body   string         // the response's body, or the datagram
}

// First is the body's first line, trimmed: the mesh's tasks answer with
// their name there.
func (a Answer) First() string {
	sc := bufio.NewScanner(strings.NewReader(a.Body))
	if sc.Scan() {
		return strings.TrimSpace(sc.Text())
	}
	return ""
}

// DefaultTimeout bounds a probe whose context has no deadline.
const DefaultTimeout = 3 * time.Second

// maxBody bounds what a probe reads of an answer (the mesh's tasks send at
// most 64 MiB, see mesh's ?size=N).
const maxBody = 64 << 20

// Do makes the probe. Errors name the protocol, the address and the
// namespace, and wrap the socket's error (syscall.ECONNREFUSED, a
// timeout, ...).
func Do(ctx context.Context, r Request) (Answer, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	if r.Proto != "tcp" && r.Proto != "udp" {
		return Answer{}, fmt.Errorf("probe %s: protocol %q: want tcp or udp", r.To, r.Proto)
	}
	conn, err := r.dial(ctx)
	if err != nil {
		return Answer{}, r.fail(err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	a := Answer{}
	if l, ok := conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }); ok {
		a.Local = l.AddrPort()
	}
	switch {
	case r.Proto == "udp":
		err = r.datagram(conn, &a)
	case r.Mode == Answered:
		err = r.get(ctx, conn, &a)
	}
	if err != nil {
		return a, r.fail(err)
	}
	return a, nil
}

func (r Request) fail(err error) error {
	from := r.Name
	if from == "" {
		from = r.Netns
	}
	if from != "" {
		from = " from " + from
	}
	if r.SPort != 0 {
		from += fmt.Sprintf(" port %d", r.SPort)
	}
	return fmt.Errorf("%s %s%s: %w", r.Proto, r.To, from, err)
}

// dial creates the socket inside the namespace (a socket belongs to the
// namespace it was created in); the I/O then happens from any thread.
func (r Request) dial(ctx context.Context) (net.Conn, error) {
	network := r.Proto + "4"
	if r.To.Addr().Is6() {
		network = r.Proto + "6"
	}
	var conn net.Conn
	err := inNetns(r.Netns, func() error {
		var err error
		if r.Proto == "tcp" {
			conn, err = (&net.Dialer{}).DialContext(ctx, network, r.To.String())
			return err
		}
		if r.SPort != 0 {
			d := net.Dialer{LocalAddr: &net.UDPAddr{Port: int(r.SPort)}}
			conn, err = d.DialContext(ctx, network, r.To.String())
			return err
		}
		for range 64 {
			d := net.Dialer{LocalAddr: &net.UDPAddr{Port: nextPort()}}
			if conn, err = d.DialContext(ctx, network, r.To.String()); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
				return err
			}
		}
		return err
	})
	return conn, err
}

var port atomic.Uint32

// nextPort walks 33000-60999 from a random start.
func nextPort() int {
	const lo, n = 33000, 28000
	port.CompareAndSwap(0, uint32(rand.IntN(n))+1)
	return lo + int(port.Add(1))%n
}

func (r Request) datagram(conn net.Conn, a *Answer) error {
	payload := r.Payload
	if payload == "" {
		payload = "meshtrace\n"
	}
	if _, err := io.WriteString(conn, payload); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	n, err := conn.Read(buf)
	var to interface{ Timeout() bool }
	switch {
	case r.Mode == Reached && errors.As(err, &to) && to.Timeout():
		return nil // silence: nothing refused it
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("port unreachable: %w", err) // the ICMP error, on a connected socket
	case err != nil:
		return err
	}
	a.Body = string(buf[:n])
	return nil
}

// get makes the HTTP GET over conn, one request on a connection of its
// own, and reads the whole body.
func (r Request) get(ctx context.Context, conn net.Conn, a *Answer) error {
	path := r.Path
	if path == "" {
		path = "/"
	}
	tr := &http.Transport{
		DialContext:       func(context.Context, string, string) (net.Conn, error) { return conn, nil },
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.To.String()+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "meshtrace-probe")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxBody {
		return fmt.Errorf("read body: more than %d bytes", maxBody)
	}
	a.Body = string(b)
	return nil
}
