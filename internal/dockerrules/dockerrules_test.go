package dockerrules_test

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
)

// The rendered rulesets are valid iptables-save text whose rules say what
// libnetwork writes; root tests load them into real namespaces.
func TestRenderedRules(t *testing.T) {
	ports := []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}, {Proto: "udp", Published: 5353, Target: 53}}
	svc := []dockerrules.Service{{Name: "web", FWMark: 0x100, VIP: netip.MustParseAddr("10.0.0.3"), Ports: ports,
		Backends: []netip.Addr{netip.MustParseAddr("10.0.0.4"), netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.6")}}}
	ingress := netip.MustParsePrefix("10.0.0.0/24")
	cases := []struct {
		name, text string
		want       []string // rules that must be there, as iptables-save prints them
		count      int
	}{
		{"host", dockerrules.Host("docker_gwbridge", netip.MustParsePrefix("172.18.0.1/16"), netip.MustParseAddr("172.18.0.2"), ports), []string{
			"-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER-INGRESS",
			"-A DOCKER-INGRESS -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080",
			"-A DOCKER-INGRESS -p udp -m udp --dport 5353 -j DNAT --to-destination 172.18.0.2:5353",
			"-A POSTROUTING -s 172.18.0.0/16 ! -o docker_gwbridge -j MASQUERADE",
			"-A DOCKER-INGRESS -p tcp -m tcp --sport 8080 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
		}, 18},
		{"sandbox-ipvs", dockerrules.IngressSandbox(ingress, netip.MustParseAddr("10.0.0.2"), svc, dockerrules.SandboxOpts{IPVSMatch: true}), []string{
			"-A PREROUTING -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x100/0xffffffff",
			"-A INPUT -d 10.0.0.3/32 -j MARK --set-xmark 0x100/0xffffffff",
			"-A POSTROUTING -d 10.0.0.0/24 -m ipvs --ipvs -j SNAT --to-source 10.0.0.2",
		}, 4},
		{"sandbox-emulated", dockerrules.IngressSandbox(ingress, netip.MustParseAddr("10.0.0.2"), svc, dockerrules.SandboxOpts{Emulate: true}), []string{
			`-A PREROUTING -m mark --mark 0x100 -m statistic --mode nth --every 3 --packet 0 -m comment --comment "meshtrace: emulates IPVS FWM" -j DNAT --to-destination 10.0.0.4`,
			`-A PREROUTING -m mark --mark 0x100 -m statistic --mode nth --every 2 --packet 0 -m comment --comment "meshtrace: emulates IPVS FWM" -j DNAT --to-destination 10.0.0.5`,
			`-A PREROUTING -m mark --mark 0x100 -m comment --comment "meshtrace: emulates IPVS FWM" -j DNAT --to-destination 10.0.0.6`,
			`-A POSTROUTING -d 10.0.0.0/24 -m conntrack --ctstate DNAT -m comment --comment "meshtrace: emulates IPVS FWM" -j SNAT --to-source 10.0.0.2`,
		}, 10},
		{"sandbox-1.12", dockerrules.IngressSandbox(ingress, netip.MustParseAddr("10.0.0.2"), svc, dockerrules.SandboxOpts{Variant: dockerrules.Docker112, IPVSMatch: true}), []string{
			"-A OUTPUT -d 10.0.0.3/32 -j MARK --set-xmark 0x100/0xffffffff",
			"-A PREROUTING -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80",
		}, 6},
		{"task", dockerrules.Task(netip.MustParseAddr("10.0.0.4"), ports, dockerrules.Modern), []string{
			"-A PREROUTING -d 10.0.0.4/32 -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80",
			"-A INPUT -d 10.0.0.4/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT",
			"-A INPUT -d 10.0.0.4/32 -p tcp -j DROP",
			"-A OUTPUT -s 10.0.0.4/32 -p udp -m udp --sport 53 -m conntrack --ctstate ESTABLISHED -j ACCEPT",
		}, 12},
		// The resolver's rules as a real Docker 28 task has them
		// (fixtures/swarm-vm2/node0/netns/696e7084ca14).
		{"task-dns", dockerrules.TaskDNS(netip.MustParseAddr("10.0.0.7"), ports[:1], dockerrules.Modern, &dockerrules.Resolver{TCPPort: 35279, UDPPort: 42139}), []string{
			"-A PREROUTING -d 10.0.0.7/32 -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80",
			"-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT",
			"-A POSTROUTING -d 127.0.0.11/32 -j DOCKER_POSTROUTING",
			"-A DOCKER_OUTPUT -d 127.0.0.11/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:35279",
			"-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:42139",
			"-A DOCKER_POSTROUTING -s 127.0.0.11/32 -p tcp -m tcp --sport 35279 -j SNAT --to-source :53",
			"-A DOCKER_POSTROUTING -s 127.0.0.11/32 -p udp -m udp --sport 42139 -j SNAT --to-source :53",
		}, 15},
		{"dns-only", dockerrules.EmbeddedDNS(dockerrules.Resolver{TCPPort: 41245, UDPPort: 52371}), []string{
			"-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:52371",
		}, 6},
		{"eastwest", dockerrules.EastWest(svc, false), []string{"-A OUTPUT -d 10.0.0.3/32 -j MARK --set-xmark 0x100/0xffffffff"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fw, err := parse.IptablesSave(c.name, strings.NewReader(c.text))
			if err != nil {
				t.Fatal(err)
			}
			if len(fw.Unparsed) > 0 || fw.RuleCount() != c.count {
				t.Fatalf("%d rules (want %d), unparsed %v:\n%s", fw.RuleCount(), c.count, fw.Unparsed, c.text)
			}
			have := map[string]bool{}
			for _, tb := range fw.Tables {
				for _, ch := range tb.Chains {
					for _, r := range ch.Rules {
						have[r.Text] = true
					}
				}
			}
			for _, w := range c.want {
				if !have[w] {
					t.Errorf("missing %q in:\n%s", w, c.text)
				}
			}
		})
	}
}

// The resolver's rules come in the order a real Docker 28 task's
// iptables-save lists them.
func TestResolverRulesOrder(t *testing.T) {
	b, err := os.ReadFile("../../fixtures/swarm-vm2/node0/netns/696e7084ca14/iptables-save.txt")
	if err != nil {
		t.Fatal(err)
	}
	var real []string
	for _, l := range strings.Split(string(b), "\n") {
		if _, rule, ok := strings.Cut(l, "] "); ok && strings.Contains(rule, "127.0.0.11") {
			real = append(real, rule)
		}
	}
	got := dockerrules.Resolver{TCPPort: 35279, UDPPort: 42139}.Rules()
	if strings.Join(got, "\n") != strings.Join(real, "\n") {
		t.Errorf("rules:\n%s\nthe recorded task has:\n%s", strings.Join(got, "\n"), strings.Join(real, "\n"))
	}
}
