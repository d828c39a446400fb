package probe

import (
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

// A UDP probe to a closed port: the ICMP port unreachable is an error in
// both modes (Reached is no answer needed, not no refusal).
func TestUDPRefused(t *testing.T) {
	closed := closedPort(t, "udp")
	for _, m := range []Mode{Answered, Reached} {
		if _, err := Do(ctxFor(t, 2*time.Second), Request{Proto: "udp", To: closed, Mode: m}); !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "port unreachable") {
			t.Errorf("mode %d: %v", m, err)
		}
	}
}

// The socket is made inside the namespace: a server only there answers,
// the caller's own namespace does not have it.
func TestInNetns(t *testing.T) {
	path := testutil.Netns(t)
	var ln net.Listener
	err := netnsx.Do(path, func() (err error) {
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "inside\n") }))
	to := ln.Addr().(*net.TCPAddr).AddrPort()
	a, err := Do(ctxFor(t, 5*time.Second), Request{Netns: path, Proto: "tcp", To: to})
	if err != nil || a.First() != "inside" {
		t.Fatalf("from inside: %+v %v", a, err)
	}
	if a, err := Do(ctxFor(t, 5*time.Second), Request{Proto: "tcp", To: to}); err == nil && a.First() == "inside" {
		t.Errorf("the caller's namespace reached the namespace's server: %+v", a)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := Do(ctxFor(t, 5*time.Second), Request{Netns: missing, Proto: "tcp", To: to}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing namespace: %v", err)
	}
}
