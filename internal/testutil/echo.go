package testutil

import (
	"net"
	"net/netip"
	"testing"
)

// UDPEcho serves a loopback UDP port of the caller's namespace until the
// test ends: every datagram is answered with reply, a newline and the
// datagram (the way the mesh's tasks answer with their name first); with
// reply "", never (a server that ignores what it gets).
func UDPEcho(t testing.TB, reply string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply != "" {
				pc.WriteTo(append([]byte(reply+"\n"), buf[:n]...), from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}
