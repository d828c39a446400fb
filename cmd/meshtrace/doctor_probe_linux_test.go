package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

// The live-host probe, run inside a throwaway namespace standing in for
// the host: a TCP port must complete the handshake; a UDP port fails only
// on "port unreachable" (a server may ignore the probe's datagram).
func TestHostProbe(t *testing.T) {
	path := testutil.Netns(t)
	var (
		tcp    net.Listener
		silent net.PacketConn
	)
	err := netnsx.Do(path, func() (err error) {
		if tcp, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return err
		}
		silent, err = net.ListenPacket("udp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	defer silent.Close()
	probe, err := probeFunc(context.Background(), &sourceFlags{}, 300*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	tcpPort := tcp.Addr().(*net.TCPAddr).Port
	udpPort := silent.LocalAddr().(*net.UDPAddr).Port
	for _, tc := range []struct {
		proto   string
		port    int
		wantErr string
	}{
		{"tcp", tcpPort, ""},
		{"tcp", tcpPort + 1, "connection refused"},
		{"udp", udpPort, ""},
		{"udp", udpPort + 1, "port unreachable"},
	} {
		err := netnsx.Do(path, func() error { return probe(tc.proto, tc.port) })
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("probe %s/%d: %v, want %q", tc.proto, tc.port, err, tc.wantErr)
		}
	}
	if _, err := probeFunc(context.Background(), &sourceFlags{from: "bundle"}, time.Second, nil); err == nil {
		t.Error("--probe with --from is accepted")
	}
}
