package main

import (
	"testing"

	"github.com/meshtrace/meshtrace/internal/kmod"
	"github.com/meshtrace/meshtrace/trace/capture"
)

// TestAllowModuleLoadFlag: every command that reads the node offers
// --allow-module-load, and the flag swaps the host's module gate for one
// that lets reads load what they use.
func TestAllowModuleLoadFlag(t *testing.T) {
	for _, name := range []string{"inspect", "path", "doctor", "collect", "trace", "tui", "replay"} {
		c, _, err := root.Find([]string{name})
		if err != nil || c.Name() != name {
			t.Fatalf("command %s: %v", name, err)
		}
		if c.Flags().Lookup("allow-module-load") == nil {
			t.Errorf("%s has no --allow-module-load", name)
		}
	}
	var s sourceFlags
	if s.modules() != nil {
		t.Error("default gate is not the host's (nil)")
	}
	s.allowModules = true
	if _, ok := s.modules().(kmod.Allow); !ok {
		t.Errorf("--allow-module-load gate %T, want kmod.Allow", s.modules())
	}
	op, tables := s.kernel()
	if a, ok := op.(capture.AFPacket); !ok || a.Modules != (kmod.Allow{}) {
		t.Errorf("capture opener %#v, want the flag's gate", op)
	}
	if k, ok := tables.(capture.Kernel); !ok || k.Modules != (kmod.Allow{}) {
		t.Errorf("trace tables %#v, want the flag's gate", tables)
	}
}
