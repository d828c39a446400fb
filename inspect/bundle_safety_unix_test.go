//go:build unix

package inspect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/safefile"
)

// bundleFiles are every file a bundle reader opens, by its path in the
// bundle.
var bundleFiles = []string{
	"netns/host/" + BundleIPAddr, "netns/host/" + BundleIptables, "netns/host/" + BundleIPVS,
	"netns/host/" + BundleIPVSTimeout, "netns/host/" + BundleRoutes, "netns/host/" + BundleNeigh,
	"netns/host/" + BundleFDB, "netns/host/" + BundleSysctl, "netns/host/" + BundleSockets,
	"netns/host/" + BundleConntrack,
	"docker/" + BundleNetworksJSON, "docker/" + BundleContainerJSON, "docker/" + BundleServicesJSON,
	BundleNotes,
}

// bundleWithout writes a bundle with a host namespace (a real ip addr and
// an empty IPVS table, so the timeouts have somewhere to go) and a Docker
// folder, minus the file name, which the caller then plants.
func bundleWithout(t *testing.T, name string) string {
	t.Helper()
	files := map[string]string{
		"netns/host/" + BundleIPAddr:   fixtureFile(t, "modern/netns/host/ip-addr.txt"),
		"netns/host/" + BundleIPVS:     "",
		"docker/" + BundleNetworksJSON: "[]",
	}
	delete(files, name)
	dir := writeBundle(t, files)
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// bundleRead reads dir with a deadline: a read that hangs fails the test
// instead of hanging it.
func bundleRead(t *testing.T, dir string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Bundle(dir)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("reading %s hangs", dir)
	}
	return nil
}

const secretLine = "root:$6$do-not-print-me:19000:0:99999:7:::"

// TestBundleRefusesLinksOut: a bundle file that is a link out of the
// bundle (to a secret, to /dev/zero, to a FIFO elsewhere) is refused
// with an error naming it, and no byte of the target is printed.
func TestBundleRefusesLinksOut(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte(secretLine+"\n"+secretLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{secret, "/dev/zero", "/dev/urandom"} {
		for _, name := range bundleFiles {
			t.Run(filepath.Base(target)+"/"+name, func(t *testing.T) {
				dir := bundleWithout(t, name)
				if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
				err := bundleRead(t, dir)
				if !errors.Is(err, safefile.ErrOutside) {
					t.Fatalf("error %v, want the link refused (safefile.ErrOutside)", err)
				}
				if !strings.Contains(err.Error(), filepath.Join(dir, name)) {
					t.Errorf("error %q does not name %s", err, name)
				}
				if strings.Contains(err.Error(), "do-not-print-me") {
					t.Errorf("error prints the target's content: %q", err)
				}
			})
		}
	}
}

// TestBundleRefusesFIFOs: a FIFO as any bundle file is refused at once.
func TestBundleRefusesFIFOs(t *testing.T) {
	for _, name := range bundleFiles {
		t.Run(name, func(t *testing.T) {
			dir := bundleWithout(t, name)
			if err := syscall.Mkfifo(filepath.Join(dir, name), 0o644); err != nil {
				t.Fatal(err)
			}
			err := bundleRead(t, dir)
			if !errors.Is(err, safefile.ErrNotRegular) || !strings.Contains(err.Error(), filepath.Join(dir, name)) || !strings.Contains(err.Error(), "FIFO") {
				t.Errorf("error %v, want a FIFO refused, naming %s", err, name)
			}
		})
	}
}

// TestBundleRefusesHugeFiles: a file past the limit is refused by its
// size before it is read (a sparse terabyte here), the limit named.
func TestBundleRefusesHugeFiles(t *testing.T) {
	for _, name := range bundleFiles {
		t.Run(name, func(t *testing.T) {
			dir := bundleWithout(t, name)
			f, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(1 << 40); err != nil {
				t.Fatal(err)
			}
			f.Close()
			err = bundleRead(t, dir)
			if !errors.Is(err, safefile.ErrTooLarge) || !strings.Contains(err.Error(), filepath.Join(dir, name)) || !strings.Contains(err.Error(), "1 GiB") {
				t.Errorf("error %v, want the file refused, naming it and the 1 GiB limit", err)
			}
		})
	}
}

// TestBundleNamespaceLinkOut: netns/rootfs -> / is not a namespace.
func TestBundleNamespaceLinkOut(t *testing.T) {
	dir := bundleWithout(t, "")
	if err := os.Symlink("/", filepath.Join(dir, "netns", "rootfs")); err != nil {
		t.Fatal(err)
	}
	m, err := Bundle(dir)
	if !errors.Is(err, safefile.ErrOutside) || !strings.Contains(err.Error(), filepath.Join(dir, "netns", "rootfs")) {
		var names []string
		if m != nil {
			for _, ns := range m.Namespaces {
				names = append(names, ns.Name)
			}
		}
		t.Fatalf("error %v (namespaces %v), want netns/rootfs refused", err, names)
	}
	// A namespace folder linked inside the bundle is still read.
	dir = bundleWithout(t, "")
	if err := os.MkdirAll(filepath.Join(dir, "elsewhere"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../elsewhere", filepath.Join(dir, "netns", "inside")); err != nil {
		t.Fatal(err)
	}
	m, err = Bundle(dir)
	if err != nil || len(m.Namespaces) != 2 || m.Namespaces[1].Name != "inside" {
		t.Fatalf("a namespace linked inside the bundle: %v, %v", m, err)
	}
}

// TestBundleDeviceInside: a device node inside the bundle (root only) is
// refused without being opened.
func TestBundleDeviceInside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := bundleWithout(t, "netns/host/"+BundleIptables)
	if err := syscall.Mknod(filepath.Join(dir, "netns/host/"+BundleIptables), syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
		t.Fatal(err)
	}
	err := bundleRead(t, dir)
	if !errors.Is(err, safefile.ErrNotRegular) || !strings.Contains(err.Error(), "character device") {
		t.Errorf("error %v, want the device refused", err)
	}
}
