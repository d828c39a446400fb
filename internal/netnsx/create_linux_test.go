package netnsx_test

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/meshtrace/meshtrace/internal/netnsx"
	"github.com/meshtrace/meshtrace/internal/testutil"
)

func TestCreateDestroy(t *testing.T) {
	testutil.NeedRoot(t)
	path := filepath.Join(t.TempDir(), testutil.Prefix())
	if err := netnsx.Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netnsx.Destroy(path) })
	if err := netnsx.Create(path); err == nil {
		t.Errorf("Create over an existing namespace file succeeded")
	}
	var self, made syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &self); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(path, &made); err != nil {
		t.Fatal(err)
	}
	if made.Ino == self.Ino {
		t.Fatalf("%s is the caller's own namespace", path)
	}
	// Inside: a fresh namespace has only lo. Outside again afterwards.
	var inside []net.Interface
	if err := netnsx.Do(path, func() (err error) { inside, err = net.Interfaces(); return }); err != nil {
		t.Fatal(err)
	}
	if len(inside) != 1 || inside[0].Name != "lo" {
		t.Errorf("new namespace has %v, want only lo", inside)
	}
	if err := syscall.Stat("/proc/thread-self/ns/net", &made); err == nil && made.Ino != self.Ino {
		t.Errorf("this thread stayed in the new namespace")
	}
	if err := netnsx.Destroy(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Destroy: %v", path, err)
	}
	if err := netnsx.Destroy(path); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if err := netnsx.Create(filepath.Join(t.TempDir(), "no", "such", "dir")); err == nil {
		t.Errorf("Create in a missing directory succeeded")
	}
}
