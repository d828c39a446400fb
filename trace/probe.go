package trace

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Probe makes traffic to a published port from a client namespace: TCP,
// one connection with an HTTP GET each; UDP, one datagram each.
type Probe struct {
	// Netns is the namespace file to open the sockets in ("" = this
	// process's); From names it in the output (client, host).
	Netns string
	From  string
	To    netip.AddrPort
	Proto string
	Count int
	// Timeout bounds each probe (default 3 s).
	Timeout time.Duration
	// Dial opens the socket inside Netns; nil = the real one
	// (probe_linux.go).
	Dial func(netns, network string, to netip.AddrPort, timeout time.Duration) (net.Conn, error)
}

// Run makes Count probes one after another and reports each.
func (p Probe) Run(ctx context.Context) []ProbeResult {
	if p.Timeout <= 0 {
		p.Timeout = 3 * time.Second
	}
	dial := p.Dial
	if dial == nil {
		dial = dialIn
	}
	var out []ProbeResult
	for i := 0; i < max(p.Count, 1); i++ {
		if ctx.Err() != nil {
			break
		}
		r := ProbeResult{From: p.From, To: p.To.String()}
		network := "tcp4"
		if p.Proto == "udp" {
			network = "udp4"
		}
		c, err := dial(p.Netns, network, p.To, p.Timeout)
		if err != nil {
			r.Error = err.Error()
			out = append(out, r)
			continue
		}
		r.Local = c.LocalAddr().String()
		c.SetDeadline(time.Now().Add(p.Timeout))
		r.Answer, err = exchange(c, p.Proto, p.To, i)
		c.Close()
		if err != nil {
			r.Error = err.Error()
		}
		out = append(out, r)
		if i+1 < p.Count {
			time.Sleep(20 * time.Millisecond) // keep the flows apart in time
		}
	}
	return out
}

// exchange sends the request and returns the first line of the answer's
// body (the mesh's tasks answer with their name).
func exchange(c net.Conn, proto string, to netip.AddrPort, i int) (string, error) {
	if proto == "udp" {
		if _, err := fmt.Fprintf(c, "meshtrace probe %d\n", i+1); err != nil {
			return "", err
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			return "", fmt.Errorf("no reply from %s: %w", to, err)
		}
		return firstLine(buf[:n]), nil
	}
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\nUser-Agent: meshtrace-probe\r\n\r\n", to); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(c, 1<<16))
	if err != nil && len(b) == 0 {
		return "", fmt.Errorf("no answer from %s: %w", to, err)
	}
	if _, body, ok := bytes.Cut(b, []byte("\r\n\r\n")); ok {
		return firstLine(body), nil
	}
	return firstLine(b), nil
}

func firstLine(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	if sc.Scan() {
		return strings.TrimSpace(sc.Text())
	}
	return ""
}
