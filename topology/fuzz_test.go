package topology_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
	"github.com/meshtrace/meshtrace/topology"
)

// FuzzFindPath feeds arbitrary host and sandbox rulesets (whatever the
// parser accepts) to path reconstruction and the renderers: they must never
// panic or loop, whatever jumps, gotos, marks and NAT targets the rules hold.
func FuzzFindPath(f *testing.F) {
	w := newWorld()
	port := []dockerrules.Port{w.port}
	svc := []dockerrules.Service{{FWMark: 0x100, Ports: port, Backends: []netip.Addr{netip.MustParseAddr("10.0.0.4")}}}
	f.Add(dockerrules.Host("docker_gwbridge", w.gw, w.sboxGW, port), dockerrules.IngressSandbox(w.ingress, w.sboxIP, svc, dockerrules.SandboxOpts{Emulate: true}), uint16(8080))
	f.Add(evalRules, evalRules, uint16(80))
	f.Add("*nat\n:PREROUTING ACCEPT [0:0]\n:L - [0:0]\n-A PREROUTING -j L\n-A L -j L\nCOMMIT\n", "", uint16(1))
	f.Fuzz(func(t *testing.T, hostRules, sboxRules string, port uint16) {
		hf, err := parse.IptablesSave("host", strings.NewReader(hostRules))
		if err != nil {
			return
		}
		sf, err := parse.IptablesSave("sbox", strings.NewReader(sboxRules))
		if err != nil {
			return
		}
		m := &topology.Model{Namespaces: []*topology.Namespace{
			{NetnsRef: topology.NetnsRef{Name: "host"}, Firewall: hf, Links: []*topology.Link{link("docker_gwbridge", "bridge", 1500, "172.18.0.1/16")}},
			{NetnsRef: topology.NetnsRef{Name: "ingress_sbox"}, Firewall: sf, Links: []*topology.Link{link("eth0", "veth", 1450, "10.0.0.2/24"), link("eth1", "veth", 1500, "172.18.0.2/16")}},
			{NetnsRef: topology.NetnsRef{Name: "task"}, Links: []*topology.Link{link("eth0", "veth", 1450, "10.0.0.4/24")}, Firewall: sf},
		}}
		topology.Classify(m)
		for _, proto := range []string{"tcp", "udp"} {
			if p, err := topology.FindPath(m, topology.Query{Proto: proto, Port: int(port)}); err == nil {
				_ = topology.WritePathText(&strings.Builder{}, p)
			}
		}
		_ = topology.WriteInspectText(&strings.Builder{}, topology.NewReport(m))
		_ = topology.WriteDOT(&strings.Builder{}, m)
	})
}
