package mesh

import (
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMatchAgentArgs(t *testing.T) {
	for _, tc := range []struct {
		argv string
		want bool
	}{
		{"/usr/bin/meshtrace mesh agent --name demo --run-dir /run/meshtrace --ready-fd 3", true},
		{"/tmp/x/meshtrace mesh agent --name=demo", true},
		{"meshtrace mesh agent --ready-fd 3 --name demo", true},
		{"meshtrace mesh agent --name demo2", false},
		{"meshtrace mesh agent --name demo --run-dir /tmp/other", false},
		{"meshtrace mesh up --name demo", false},
		{"vim mesh agent notes --name demo", false},
		{"meshtrace", false},
		{"meshtrace mesh agent --name", false},
	} {
		if got := matchAgentArgs(strings.Fields(tc.argv), "demo", "/run/meshtrace"); got != tc.want {
			t.Errorf("matchAgentArgs(%q) = %v, want %v", tc.argv, got, tc.want)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/run/a\040b/c\134d`); got != `/run/a b/c\d` {
		t.Errorf("unescapeMount = %q", got)
	}
	if got := unescapeMount(`/plain`); got != "/plain" {
		t.Errorf("unescapeMount = %q", got)
	}
}

func TestHTTPHandler(t *testing.T) {
	h := httpHandler(Identity{Task: "web.2", Node: "node1", Netns: "0123456789ab", IP: "10.0.0.7"})
	for _, tc := range []struct {
		url      string
		status   int
		size     int // -1: any
		firstRow string
	}{
		{"/", 200, -1, "web.2"},
		{"/?size=5000", 200, 5000, "web.2"},
		{"/?size=3", 200, -1, "web.2"}, // never shorter than the identity
		{"/?size=-1", 400, -1, "web.2"},
		{"/?size=999999999999", 400, -1, "web.2"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.url, nil))
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.url, rec.Code, tc.status)
		}
		if tc.size >= 0 && len(body) != tc.size {
			t.Errorf("%s: %d bytes, want %d", tc.url, len(body), tc.size)
		}
		if first, _, _ := strings.Cut(string(body), "\n"); first != tc.firstRow {
			t.Errorf("%s: first line %q", tc.url, first)
		}
		if tc.status == 200 && !strings.Contains(string(body), "node: node1\nnetns: 0123456789ab\n") {
			t.Errorf("%s: body lacks node/netns:\n%.200s", tc.url, body)
		}
	}
}

// TestServeUDP sends bursts from two sockets on loopback: every datagram
// gets its own answer (the batches lose or merge none), naming the
// sender and the server's address.
func TestServeUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		serveUDP(pc, Identity{Task: "dns.1", Node: "node0", Netns: "ns", IP: "10.0.0.3"})
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	const burst = 100
	for range 2 {
		c, err := net.DialUDP("udp4", nil, pc.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range burst {
			if _, err := fmt.Fprintf(c, "q%d", i); err != nil {
				t.Fatal(err)
			}
		}
		want := fmt.Sprintf("dns.1\nnode: node0\nnetns: ns\nip: 10.0.0.3\nremote: %s\nlocal: %s\n", c.LocalAddr(), pc.LocalAddr())
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 2048)
		for i := range burst {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("answer %d of %d: %v", i+1, burst, err)
			}
			if string(buf[:n]) != want {
				t.Fatalf("answer %d: %q, want %q", i+1, buf[:n], want)
			}
		}
	}
}
