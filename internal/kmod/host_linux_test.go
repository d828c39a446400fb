package kmod

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestHostState checks the gate against this machine's own /sys and /proc:
// every /sys/module directory without initstate is a built-in module, every
// Live line of /proc/modules a loaded one, and where the kernel has no
// /proc/modules nothing can count as absent.
func TestHostState(t *testing.T) {
	host := FS{}
	dirs, err := os.ReadDir("/sys/module")
	if err != nil {
		t.Skipf("no /sys/module: %v", err)
	}
	builtins := 0
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join("/sys/module", d.Name(), "initstate")); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		builtins++
		if s, how := host.State(d.Name()); s != BuiltIn {
			t.Errorf("%s: /sys/module/%s has no initstate, gate says %v (%s)", d.Name(), d.Name(), s, how)
		}
	}
	if builtins == 0 {
		t.Error("no built-in module with a sysfs directory: the check above checked nothing")
	}
	mods, err := os.ReadFile("/proc/modules")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// This kernel cannot load modules: no request can load one.
		for _, need := range []Need{NeedIPVS, NeedNFNetlink, NeedNFTables, NeedConntrack, NeedSockets, NeedAFPacket, NeedXfrm} {
			if err := need.Check(host); err != nil {
				t.Errorf("kernel without a module loader: %v", err)
			}
		}
	case err != nil:
		t.Fatal(err)
	default:
		for name, st := range parseProcModules(mods) {
			if s, how := host.State(name); st == "Live" && s != Loaded {
				t.Errorf("%s: Live in /proc/modules, gate says %v (%s)", name, s, how)
			}
		}
	}
}
