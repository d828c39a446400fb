package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

// listenHTTP serves name (and the path asked) on a loopback port of the
// caller's namespace; /missing answers 404.
func listenHTTP(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.Error(w, "not here", http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, "%s\n%s %s\n", name, r.URL.RequestURI(), r.UserAgent())
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// closedPort is a loopback port nothing listens on (just closed).
func closedPort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestTCP(t *testing.T) {
	to := listenHTTP(t, "web.1")
	a, err := Do(ctxFor(t, 5*time.Second), Request{Proto: "tcp", To: to, Path: "/?size=3"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != 200 || a.First() != "web.1" || !strings.Contains(a.Body, "/?size=3 meshtrace-probe") || !a.Local.Addr().IsLoopback() || a.Local.Port() == 0 {
		t.Errorf("answer %+v", a)
	}
	// Any status is an answer; the caller decides what it means.
	a, err = Do(ctxFor(t, 5*time.Second), Request{Proto: "tcp", To: to, Path: "/missing"})
	if err != nil || a.Status != 404 || a.First() != "not here" {
		t.Errorf("404: %+v %v", a, err)
	}
	// Reached: the handshake only.
	if _, err := Do(ctxFor(t, 5*time.Second), Request{Proto: "tcp", To: to, Mode: Reached}); err != nil {
		t.Errorf("reached: %v", err)
	}
	closed := closedPort(t, "tcp")
	for _, m := range []Mode{Answered, Reached} {
		_, err := Do(ctxFor(t, 5*time.Second), Request{Proto: "tcp", To: closed, Mode: m, Name: "client"})
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasPrefix(err.Error(), "tcp "+closed.String()+" from client: ") {
			t.Errorf("mode %d to a closed port: %v", m, err)
		}
	}
}

func TestUDP(t *testing.T) {
	to := testutil.UDPEcho(t, "dns.1")
	a, err := Do(ctxFor(t, 5*time.Second), Request{Proto: "udp", To: to, Payload: "probe 1\n"})
	if err != nil || a.First() != "dns.1" || !strings.Contains(a.Body, "probe 1") || a.Status != 0 {
		t.Errorf("answer %+v %v", a, err)
	}
	quiet := testutil.UDPEcho(t, "")
	// A quiet server: no answer is a timeout, unless reaching is enough.
	if _, err := Do(ctxFor(t, 200*time.Millisecond), Request{Proto: "udp", To: quiet}); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Errorf("answered mode, quiet server: %v", err)
	}
	if _, err := Do(ctxFor(t, 200*time.Millisecond), Request{Proto: "udp", To: quiet, Mode: Reached}); err != nil {
		t.Errorf("reached mode, quiet server: %v", err)
	}
	if _, err := Do(ctxFor(t, time.Second), Request{Proto: "sctp", To: quiet}); err == nil || !strings.Contains(err.Error(), `protocol "sctp"`) {
		t.Errorf("sctp: %v", err)
	}
}

func isTimeout(err error) bool {
	var to interface{ Timeout() bool }
	return errors.As(err, &to) && to.Timeout()
}

// Each UDP probe leaves from the next port of the walk (never the
// kernel's random pick, which may be a port whose stale conntrack entry
// still pins the old backend); a named port is used as it is.
func TestUDPSourcePorts(t *testing.T) {
	to := testutil.UDPEcho(t, "dns.1")
	var ports []uint16
	for range 5 {
		a, err := Do(ctxFor(t, 5*time.Second), Request{Proto: "udp", To: to})
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, a.Local.Port())
	}
	for i, p := range ports {
		if p < 33000 || p > 60999 {
			t.Errorf("port %d outside the walk's range: %v", p, ports)
		}
		if i > 0 && p != ports[i-1]+1 && !(ports[i-1] == 60999 && p == 33000) {
			t.Errorf("ports %v: %d does not follow %d (skipped only when in use)", ports, p, ports[i-1])
		}
	}
	sport := ports[len(ports)-1] + 100
	a, err := Do(ctxFor(t, 5*time.Second), Request{Proto: "udp", To: to, SPort: sport})
	if err != nil || a.Local.Port() != sport {
		t.Errorf("named port %d: %+v %v", sport, a, err)
	}
	// A named port that is taken is an error, not another port.
	pc, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", sport))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := Do(ctxFor(t, 5*time.Second), Request{Proto: "udp", To: to, SPort: sport, Name: "client"}); !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), fmt.Sprintf("from client port %d: ", sport)) {
		t.Errorf("taken port %d: %v", sport, err)
	}
}

// The walk covers the whole range before it hands out a port again.
func TestNextPortCoversRange(t *testing.T) {
	seen := map[int]bool{}
	for range 28000 {
		p := nextPort()
		if seen[p] || p < 33000 || p > 60999 {
			t.Fatalf("port %d (seen before: %v)", p, seen[p])
		}
		seen[p] = true
	}
}
