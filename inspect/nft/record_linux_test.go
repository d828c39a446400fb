package nft

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var record = flag.Bool("nft.record", false, "re-record testdata/wire from real namespaces")

// rawDump returns the raw reply payloads of the three dumps, as lines of
// the testdata/wire format: "<tables|chains|rules> <hex payload>".
func rawDump(t *testing.T, path string) []byte {
	t.Helper()
	nl, closer, err := openDumper(path)
	if err != nil {
		t.Fatal(err)
	}
	defer closer()
	var out bytes.Buffer
	for _, msg := range dumpMessages {
		err := nl.dump(unix.NFNL_SUBSYS_NFTABLES<<8|msg, unix.NFPROTO_IPV4, func(data []byte) error {
			fmt.Fprintf(&out, "%s %s\n", msgName(msg), hex.EncodeToString(data))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// TestRecordWire records, with -nft.record, the raw nf_tables dump of the
// Docker-shaped namespaces together with iptables-save -c taken between
// two identical dumps; TestWireFixtures decodes them without root.
func TestRecordWire(t *testing.T) {
	if !*record {
		t.Skip("run with -nft.record to re-record testdata/wire")
	}
	for _, c := range shapeCases {
		if m := missingKernelSupport(t, c.needs...); len(m) > 0 {
			t.Logf("%s not recorded: kernel support missing: %s", c.name, strings.Join(m, "; "))
			continue
		}
		name, path := setupNetns(t, c.rules, c.links)
		sendTraffic(t, path, c.traffic)
		var raw []byte
		var save string
		for try := 0; ; try++ {
			raw = rawDump(t, path)
			save = nsRun(t, name, "", "iptables-save", "-c")
			if bytes.Equal(raw, rawDump(t, path)) {
				break
			}
			if try == 5 {
				t.Fatalf("%s: counters kept moving", c.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		header := fmt.Sprintf("# nf_tables dump (family ip) of a namespace loaded with %s after test traffic;\n"+
			"# recorded by TestRecordWire (go test -run TestRecordWire -nft.record) on %s, %s\n",
			c.rules, kernelRelease(), iptablesVersion(t, name))
		base := filepath.Join("testdata", "wire", c.name)
		if err := os.WriteFile(base+".nlmsg", append([]byte(header), raw...), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(base+".save", []byte(save), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "unknown kernel"
	}
	return "Linux " + unix.ByteSliceToString(u.Release[:])
}

func iptablesVersion(t *testing.T, ns string) string {
	return string(bytes.TrimSpace([]byte(nsRun(t, ns, "", "iptables", "-V"))))
}
