package topology_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/topology"
)

// EmulationMark recognises the emulation's rules as dockerrules writes
// them, and nothing that merely looks like them: a DNAT that also changes
// the port, matches an address or a protocol, or matches a negated mark
// is a rule of someone else's.
func TestEmulationMark(t *testing.T) {
	svc := dockerrules.Service{Name: "web", FWMark: 0x101, VIP: netip.MustParseAddr("10.0.0.4"),
		Ports:    []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}},
		Backends: []netip.Addr{netip.MustParseAddr("10.0.0.6"), netip.MustParseAddr("10.0.0.7")}}
	sbox := fw(t, "sandbox", dockerrules.IngressSandbox(netip.MustParsePrefix("10.0.0.0/24"), netip.MustParseAddr("10.0.0.2"),
		[]dockerrules.Service{svc}, dockerrules.SandboxOpts{Emulate: true}))
	n := 0
	for _, c := range sbox.Table("nat").Chains {
		for _, r := range c.Rules {
			if mark, ok := topology.EmulationMark(r); ok {
				n++
				if mark != 0x101 || r.Target != "DNAT" {
					t.Errorf("%s: mark %#x", r.Text, mark)
				}
			}
		}
	}
	if n < len(svc.Backends) {
		t.Errorf("recognised %d emulation rules, want at least %d", n, len(svc.Backends))
	}
	for _, spec := range []string{
		"-m mark --mark 0x101 -j DNAT --to-destination 10.0.0.6:80",
		"-d 10.0.0.4/32 -m mark --mark 0x101 -j DNAT --to-destination 10.0.0.6",
		"-p tcp -m mark --mark 0x101 -j DNAT --to-destination 10.0.0.6",
		"-m mark ! --mark 0x101 -j DNAT --to-destination 10.0.0.6",
		"-m mark --mark 0x101 -m tcp -p tcp --dport 80 -j DNAT --to-destination 10.0.0.6",
		"-m mark --mark 0x101 -j SNAT --to-source 10.0.0.6",
		"-j DNAT --to-destination 10.0.0.6",
	} {
		f := fw(t, "x", fmt.Sprintf("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING %s\nCOMMIT\n", spec))
		if mark, ok := topology.EmulationMark(f.Table("nat").Chains[0].Rules[0]); ok {
			t.Errorf("%q recognised as emulation of %#x", spec, mark)
		}
	}
}
