package pcapio

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReplayCutNoStop: a capture cut short (a copy interrupted, a full
// disk) ends in an error, and the flows in flight where it ends carry no
// stop: where their packets went next is in the part not read, so no hop
// is blamed for it. Cut at every tenth of the recorded captures.
func TestReplayCutNoStop(t *testing.T) {
	for _, name := range []string{"mesh-udp.pcapng", "mesh-tcp.pcapng"} {
		data, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil {
			t.Fatal(err)
		}
		whole, err := analyse(name, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range whole.Flows {
			if f.Stop != nil {
				t.Fatalf("%s: the whole capture stops flow %d: %+v", name, f.ID, f.Stop)
			}
		}
		for tenth := 1; tenth < 10; tenth++ {
			res, err := analyse(name, data[:len(data)*tenth/10])
			if err == nil || res.Error == "" {
				t.Errorf("%s cut at %d/10: no error (%v)", name, tenth, err)
			}
			for _, f := range res.Flows {
				if f.Stop != nil {
					t.Errorf("%s cut at %d/10: flow %d stopped %+v, yet the file ends before we know", name, tenth, f.ID, f.Stop)
				}
			}
		}
	}
}
