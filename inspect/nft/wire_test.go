//go:build linux

package nft

import (
	"bufio"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// loadWire reads a testdata/wire/*.nlmsg file (recorded by TestRecordWire)
// back into a Dump through the same decoding a live read uses.
func loadWire(t testing.TB, path string) (*Dump, [][2]any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := newDumpBuilder()
	var msgs [][2]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, hx, _ := strings.Cut(line, " ")
		var msg uint16
		switch kind {
		case "tables":
			msg = unix.NFT_MSG_GETTABLE
		case "chains":
			msg = unix.NFT_MSG_GETCHAIN
		case "rules":
			msg = unix.NFT_MSG_GETRULE
		default:
			t.Fatalf("%s:%d: unknown kind %q", path, n, kind)
		}
		data, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		if err := b.add(msg, data); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		msgs = append(msgs, [2]any{msg, data})
	}
	if !b.consistent {
		t.Fatalf("%s: replies from different generations", path)
	}
	return &b.d, msgs
}

// TestWireFixtures decodes real recorded nf_tables dumps without root and
// checks them against iptables-save -c recorded at the same moment.
func TestWireFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/wire/*.nlmsg")
	if len(files) < 4 {
		t.Fatalf("want the 4 recorded fixtures in testdata/wire, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			d, _ := loadWire(t, f)
			fw := Decode(d)
			if len(fw.Unparsed) > 0 {
				t.Errorf("unparsed: %+v", fw.Unparsed)
			}
			save, err := os.ReadFile(strings.TrimSuffix(f, ".nlmsg") + ".save")
			if err != nil {
				t.Fatal(err)
			}
			if n := compareWithSave(t, fw, parseSave(t, string(save))); n < 5 {
				t.Errorf("only %d rules compared", n)
			}
			compareParsed(t, fw, string(save))
		})
	}
}
