package testutil

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/meshtrace/meshtrace/internal/netnsx"
)

// Netns creates a network namespace for the test, with lo up, pinned
// under the test's temporary directory, and destroys it when the test
// ends (also after a failure). It needs root (NeedRoot).
func Netns(t testing.TB) string {
	t.Helper()
	NeedRoot(t)
	path := filepath.Join(t.TempDir(), Prefix())
	if err := netnsx.Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netnsx.Destroy(path) })
	err := netnsx.Do(path, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		t.Fatalf("netns %s: lo up: %v", path, err)
	}
	return path
}

// SendUDP sends one datagram to to from inside the namespace at nsPath:
// enough for conntrack to track a "connection".
func SendUDP(t testing.TB, nsPath string, to netip.AddrPort) {
	t.Helper()
	err := netnsx.Do(nsPath, func() error {
		c, err := net.Dial("udp4", to.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	})
	if err != nil {
		t.Fatalf("netns %s: udp to %s: %v", nsPath, to, err)
	}
}
