package capture

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshtrace/meshtrace/internal/testutil"
)

// trace --probe's UDP datagrams each leave from the next port of the probe
// client's walk, never from a port the kernel picks at random (which may be
// one whose stale conntrack entry still pins the old backend).
func TestProbeUDPWalksPorts(t *testing.T) {
	to := testutil.UDPEcho(t, "dns.1")
	res := Probe{From: "host", To: to, Proto: "udp", Count: 3, Timeout: 5 * time.Second}.Run(context.Background())
	if len(res) != 3 {
		t.Fatalf("%d results: %+v", len(res), res)
	}
	var prev uint16
	for i, r := range res {
		local, err := netip.ParseAddrPort(r.Local)
		if r.Error != "" || r.Answer != "dns.1" || err != nil {
			t.Fatalf("probe %d: %+v (%v)", i, r, err)
		}
		if p := local.Port(); p < 33000 || p > 60999 || (i > 0 && p != prev+1 && !(prev == 60999 && p == 33000)) {
			t.Errorf("probe %d from port %d after %d: not the walk's next port (%+v)", i, p, prev, res)
		}
		prev = local.Port()
	}
	if runtime.GOOS != "linux" {
		return // a closed UDP port answers with ECONNREFUSED on Linux
	}
	// A refused probe says so and names where it came from.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	to = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	res = Probe{From: "host", To: to, Proto: "udp", Count: 1, Timeout: 5 * time.Second}.Run(context.Background())
	if len(res) != 1 || !strings.Contains(res[0].Error, "udp "+to.String()+" from host: port unreachable") {
		t.Errorf("refused: %+v", res)
	}
}
