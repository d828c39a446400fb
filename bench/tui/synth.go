// Package tuibench measures the TUI on a node far bigger than the
// fixtures: a synthetic routing mesh with hundreds of namespaces and
// thousands of rules (Synth), rendered at the sizes operators use.
//
//	go test ./bench/tui -run '^$' -bench . -benchmem
//	go test ./bench/tui -run TestKeypressBudget -v    # logs the numbers
package tuibench

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/topology"
)

// Synth builds a classified model shaped like a busy Swarm node: the
// host, the ingress sandbox, the ingress overlay and namespaces-3 tasks;
// ports published ports (the first balanced over every task, the others
// over three); about rules iptables rules in all. Rules are generated as
// iptables-save text and parsed, so they are what the readers produce.
func Synth(namespaces, rules, ports int) (*topology.Model, error) {
	tasks := namespaces - 3
	if tasks < 1 || ports < 1 {
		return nil, fmt.Errorf("synth: need at least 4 namespaces and 1 port")
	}
	m := &topology.Model{Source: fmt.Sprintf("synth:%dns/%drules", namespaces, rules)}
	host := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "host"}, Links: []*topology.Link{
		link(1, "lo", "loopback", 65536, "127.0.0.1/8"),
		link(2, "eth0", "device", 1500, "192.168.56.11/24"),
		link(3, "docker_gwbridge", "bridge", 1500, "172.18.0.1/16"),
	}}
	sbox := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "ingress_sbox"}, Docker: &topology.NetnsMeta{Network: "ingress"}}
	ovl := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "1-ingress0000"}, Docker: &topology.NetnsMeta{Network: "ingress"}, Links: []*topology.Link{
		link(2, "br0", "bridge", 1450, "10.255.0.1/16"),
		{Index: 3, Name: "vxlan0", Kind: "vxlan", MTU: 1450, Up: true, Master: "br0", VXLAN: &topology.VXLANInfo{ID: 4096, Port: 4789}},
	}}
	veth := func(a *topology.Namespace, an string, b *topology.Namespace, bn string, master string, addrA, addrB string, mtu int) {
		la := link(len(a.Links)+10, an, "veth", mtu, addrA)
		lb := link(len(b.Links)+10, bn, "veth", mtu, addrB)
		la.Master = master
		la.Peer = &topology.Peer{Index: lb.Index, NetnsID: 1, Netns: b.Name, Ifname: bn}
		lb.Peer = &topology.Peer{Index: la.Index, NetnsID: 0, Netns: a.Name, Ifname: an}
		a.Links, b.Links = append(a.Links, la), append(b.Links, lb)
	}
	veth(host, "vethsbox", sbox, "eth1", "docker_gwbridge", "", "172.18.0.2/16", 1500)
	veth(ovl, "veth0", sbox, "eth0", "br0", "", "10.255.0.2/16", 1450)

	taskAddr := func(t int) netip.Addr { return netip.AddrFrom4([4]byte{10, 255, byte(1 + t/250), byte(1 + t%250)}) }
	var taskNS []*topology.Namespace
	for t := 0; t < tasks; t++ {
		ns := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: fmt.Sprintf("%012x", 0xa0000000+t)}, Docker: &topology.NetnsMeta{Service: "web", Task: fmt.Sprintf("web.%d", t+1)}}
		ns.Links = []*topology.Link{link(1, "lo", "loopback", 65536, "127.0.0.1/8")}
		veth(ovl, fmt.Sprintf("veth%d", t+1), ns, "eth0", "br0", "", taskAddr(t).String()+"/16", 1450)
		gw := netip.AddrFrom4([4]byte{172, 18, byte(1 + t/250), byte(3 + t%250)})
		veth(host, fmt.Sprintf("veth%07x", t), ns, "eth1", "docker_gwbridge", "", gw.String()+"/16", 1500)
		taskNS = append(taskNS, ns)
	}

	// rules: host and sandbox get the Docker rules, tasks share the rest.
	var hb, sb strings.Builder
	hb.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER-INGRESS - [0:0]\n")
	hb.WriteString("[9:540] -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER-INGRESS\n-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER-INGRESS\n")
	hb.WriteString("-A POSTROUTING -s 172.18.0.0/16 ! -o docker_gwbridge -j MASQUERADE\n")
	sb.WriteString("*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n")
	ipvs := &topology.IPVS{Available: true}
	for p := 0; p < ports; p++ {
		port, mark := 8080+p, 0x100+p
		fmt.Fprintf(&hb, "[%d:%d] -A DOCKER-INGRESS -p tcp -m tcp --dport %d -j DNAT --to-destination 172.18.0.2:%d\n", 3+p, 180+60*p, port, port)
		fmt.Fprintf(&sb, "[%d:%d] -A PREROUTING -p tcp -m tcp --dport %d -j MARK --set-xmark %#x/0xffffffff\n", 3+p, 180+60*p, port, mark)
		svc := &topology.IPVSService{FWMark: uint32(mark), Scheduler: "rr", Impl: "ipvs"}
		n := 3
		if p == 0 {
			n = tasks
		}
		for i := 0; i < min(n, tasks); i++ {
			svc.Dests = append(svc.Dests, &topology.IPVSDest{Addr: taskAddr((i + p) % tasks), Forward: "masq", Weight: 1, ActiveConns: i % 3})
		}
		ipvs.Services = append(ipvs.Services, svc)
	}
	hb.WriteString("-A DOCKER-INGRESS -j RETURN\nCOMMIT\n")
	sb.WriteString("COMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -d 10.255.0.0/16 -m ipvs --ipvs -j SNAT --to-source 10.255.0.2\nCOMMIT\n")
	hb.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n:DOCKER-INGRESS - [0:0]\n")
	hb.WriteString("-A FORWARD -j DOCKER-USER\n-A FORWARD -j DOCKER-INGRESS\n-A FORWARD -i docker_gwbridge -j ACCEPT\n-A FORWARD -o docker_gwbridge -j ACCEPT\n-A DOCKER-USER -j RETURN\n")
	for p := 0; p < ports; p++ {
		fmt.Fprintf(&hb, "-A DOCKER-INGRESS -p tcp -m tcp --dport %d -j ACCEPT\n-A DOCKER-INGRESS -p tcp -m state --state RELATED,ESTABLISHED -m tcp --sport %d -j ACCEPT\n", 8080+p, 8080+p)
	}
	hb.WriteString("-A DOCKER-INGRESS -j RETURN\nCOMMIT\n")

	var err error
	if host.Firewall, err = parse.IptablesSave("host", strings.NewReader(hb.String())); err != nil {
		return nil, err
	}
	if sbox.Firewall, err = parse.IptablesSave("ingress_sbox", strings.NewReader(sb.String())); err != nil {
		return nil, err
	}
	sbox.IPVS = ipvs
	ovl.Firewall = &topology.Firewall{}
	left := rules - host.Firewall.RuleCount() - sbox.Firewall.RuleCount()
	for t, ns := range taskNS {
		n := left / tasks
		if t < left%tasks {
			n++
		}
		if ns.Firewall, err = parse.IptablesSave(ns.Name, strings.NewReader(taskRules(taskAddr(t), n))); err != nil {
			return nil, err
		}
	}
	m.Namespaces = append([]*topology.Namespace{host, sbox, ovl}, taskNS...)
	topology.Classify(m)
	return m, nil
}

// taskRules is a task's nat REDIRECT plus n-1 filter rules.
func taskRules(a netip.Addr, n int) string {
	var b strings.Builder
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n")
	if n > 0 {
		fmt.Fprintf(&b, "[1:60] -A PREROUTING -d %s/32 -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80\n", a)
	}
	b.WriteString("COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "-A INPUT -s 10.%d.%d.0/24 -p tcp -m tcp --dport %d -j ACCEPT\n", i/250, i%250, 1000+i)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func link(idx int, name, kind string, mtu int, addr string) *topology.Link {
	l := &topology.Link{Index: idx, Name: name, Kind: kind, MTU: mtu, Up: true}
	if addr != "" {
		l.Addrs = []netip.Prefix{netip.MustParsePrefix(addr)}
	}
	return l
}
