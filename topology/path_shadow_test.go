package topology_test

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/topology"
)

// TestDocker28Shadow: the published path evaluates the packet through raw
// PREROUTING and filter FORWARD as Docker 28 writes them. Docker 28.0.1+'s
// rules (DOCKER-FORWARD running DOCKER-INGRESS first, raw drops for the
// bridge's endpoints) and 28.0.0's as documented pass it as the older
// rules did; 28.0.0's after a daemon restart (DOCKER's DROP above
// DOCKER-INGRESS, behind Docker's ipset of its bridges, moby#49536) and a
// raw PREROUTING DROP of the published port shadow DOCKER-INGRESS; a DROP
// in DOCKER-USER is the operator's own (filter-drop), as is a FORWARD
// whose jump to Docker's chains is gone.
func TestDocker28Shadow(t *testing.T) {
	const modern = fixturesDir + "/bundles/modern"
	var (
		gw       = "docker_gwbridge"
		gwSubnet = netip.MustParsePrefix("172.18.0.0/16")
		docker0  = netip.MustParsePrefix("172.17.0.0/16")
		sbox     = netip.MustParseAddr("172.18.0.2")
		ports    = []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}}
		eps      = []netip.Addr{sbox, netip.MustParseAddr("172.18.0.3")}
	)
	host28 := dockerrules.Host28(gw, gwSubnet, docker0, sbox, eps, ports)
	pathOf := func(t *testing.T, rules string) *topology.Path {
		t.Helper()
		m := loadSource(t, withFile(t, modern, "netns/host/iptables-save.txt", rules))
		p, err := topology.FindPath(m, topology.Query{Proto: "tcp", Port: 8080})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := pathOf(t, mustRead(t, modern+"/netns/host/iptables-save.txt"))
	if base.Verdict == topology.VerdictBroken {
		t.Fatalf("the recorded rules break: %+v", base.Hops)
	}
	for name, c := range map[string]struct {
		rules  string
		code   topology.Code
		reason string
	}{
		"28.0.1+":             {host28, "", ""},
		"28.0.0":              {dockerrules.Host2800(gw, gwSubnet, docker0, sbox, ports, false), "", ""},
		"28.0.0 restarted":    {dockerrules.Host2800(gw, gwSubnet, docker0, sbox, ports, true), topology.BreakIngressShadowed, "-A DOCKER ! -i docker_gwbridge -o docker_gwbridge -j DROP"},
		"raw drop":            {strings.Replace(host28, "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n", "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A PREROUTING -p tcp -m tcp --dport 8080 -j DROP\n", 1), topology.BreakIngressShadowed, "raw PREROUTING"},
		"docker-user drop":    {strings.Replace(host28, "-A FORWARD -j DOCKER-USER\n", "-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -p tcp -m tcp --dport 8080 -j DROP\n", 1), topology.BreakFilterDrop, "DOCKER-USER"},
		"forward jump gone":   {strings.Replace(host28, "-A FORWARD -j DOCKER-FORWARD\n", "", 1), topology.BreakFilterDrop, "policy DROP"},
		"raw for another dst": {strings.Replace(host28, "-A PREROUTING -d 172.18.0.2/32", "-A PREROUTING -d 172.18.0.9/32", 1), "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			p := pathOf(t, c.rules)
			last := p.Hops[len(p.Hops)-1]
			if c.code == "" {
				if p.Verdict != base.Verdict || last.Kind == topology.HopBreak {
					t.Errorf("want %s as with the recorded rules, got %s: %+v", base.Verdict, p.Verdict, last)
				}
				return
			}
			if p.Verdict != topology.VerdictBroken || last.Code != c.code || last.Netns != "host" || !strings.Contains(last.Reason, c.reason) {
				t.Errorf("want %s (%q), got %s: %+v", c.code, c.reason, p.Verdict, last)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
