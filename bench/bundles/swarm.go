package bundles

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/meshtrace/meshtrace/internal/dockerrules"
)

// SwarmSpec sizes a synthetic swarm.
type SwarmSpec struct {
	Nodes        int // 50
	TasksPerNode int // 100
	Services     int // published services, their tasks spread evenly over the nodes (default 20)
}

// The synthetic swarm's addressing: the ingress network is a /16 (the
// default /24 holds 253 addresses; a swarm of 5,000 ingress tasks is
// created with `docker network create --ingress --subnet 10.0.0.0/16`).
var (
	swIngress = netip.MustParsePrefix("10.0.0.0/16")
	swGW      = netip.MustParsePrefix("172.18.0.0/16")
	swLAN     = netip.MustParsePrefix("192.168.0.0/20")
)

const (
	swIngressID = "ingrs5x7w0q3z9k2m4n6p8r1t"
	swOverlay   = "1-ingrs5x7w0"
	swVNI       = 4096
)

type swNode struct {
	name, id string
	ip       netip.Addr
	sandbox  netip.Addr // on ingress
	local    []int      // task indexes
}

type swService struct {
	name, id string
	vip      netip.Addr
	port     dockerrules.Port
	tasks    []int
}

type swTask struct {
	svc, slot, node int
	ip              netip.Addr
	gw              netip.Addr // on the node's docker_gwbridge
	netns           string     // 12 hex: the sandbox key
	ctr, id         string     // container id (64 hex), task id (25 chars)
}

type swPlan struct {
	nodes    []swNode
	services []swService
	tasks    []swTask
}

// nth is the i-th address of p.
func nth(p netip.Prefix, i int) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func hash(n int, parts ...string) string {
	s := sha256.Sum256([]byte(strings.Join(parts, "/")))
	return hex.EncodeToString(s[:])[:n]
}

// id25 is a swarm object id (25 lower-case alphanumerics).
func id25(parts ...string) string {
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	s := sha256.Sum256([]byte(strings.Join(parts, "/")))
	b := make([]byte, 25)
	for i := range b {
		b[i] = alnum[int(s[i])%len(alnum)]
	}
	return string(b)
}

func mac(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

func planSwarm(sp SwarmSpec) (*swPlan, error) {
	if sp.Services == 0 {
		sp.Services = 20
	}
	total := sp.Nodes * sp.TasksPerNode
	if sp.Nodes < 1 || sp.TasksPerNode < 1 || total%sp.Services != 0 || sp.Nodes > 4000 || total > 60000 {
		return nil, fmt.Errorf("swarm of %d nodes x %d tasks in %d services: want the tasks to split evenly, at most 60,000", sp.Nodes, sp.TasksPerNode, sp.Services)
	}
	p := &swPlan{}
	// .1 is br0, then the sandboxes, the VIPs, the tasks.
	next := 2
	for i := range sp.Nodes {
		p.nodes = append(p.nodes, swNode{name: fmt.Sprintf("node%02d", i), id: id25("node", fmt.Sprint(i)), ip: nth(swLAN, 10+i), sandbox: nth(swIngress, next)})
		next++
	}
	for s := range sp.Services {
		p.services = append(p.services, swService{name: fmt.Sprintf("svc%02d", s), id: id25("service", fmt.Sprint(s)), vip: nth(swIngress, next),
			port: dockerrules.Port{Proto: "tcp", Published: 30000 + s, Target: 80}})
		next++
	}
	per := total / sp.Services
	for s := range p.services {
		for slot := 1; slot <= per; slot++ {
			i := len(p.tasks)
			n := i % sp.Nodes // round robin: every node runs every service
			t := swTask{svc: s, slot: slot, node: n, ip: nth(swIngress, next), gw: nth(swGW, 3+len(p.nodes[n].local)),
				netns: hash(12, "sandbox", fmt.Sprint(i)), ctr: hash(64, "container", fmt.Sprint(i)), id: id25("task", fmt.Sprint(i))}
			next++
			p.nodes[n].local = append(p.nodes[n].local, i)
			p.services[s].tasks = append(p.services[s].tasks, i)
			p.tasks = append(p.tasks, t)
		}
	}
	return p, nil
}

// taskName is Docker's SERVICE.SLOT.TASKID.
func (p *swPlan) taskName(i int) string {
	t := p.tasks[i]
	return fmt.Sprintf("%s.%d.%s", p.services[t.svc].name, t.slot, t.id)
}

// fwmark is the mark node n gave service s: allocated per node, so it
// differs between nodes of a healthy swarm (here: a rotation).
func (p *swPlan) fwmark(n, s int) uint32 {
	return uint32(0x100 + (s+n)%len(p.services))
}

// WriteSwarm writes one bundle per node, DIR/<node>/, in the layout
// `meshtrace collect` writes: every namespace's ip -d addr, iptables-save
// -c, routes, neighbours, FDB, sysctls and sockets, the sandbox's
// ipvsadm-save -n (every task of every service, cluster-wide), the
// overlay's FDB and neighbour entries for every remote endpoint, and the
// engine's JSON (the ingress network with --verbose's services, tasks and
// peers). It returns the node directories.
func WriteSwarm(dir string, sp SwarmSpec) ([]string, error) {
	p, err := planSwarm(sp)
	if err != nil {
		return nil, err
	}
	var out []string
	for n := range p.nodes {
		d := filepath.Join(dir, p.nodes[n].name)
		if err := p.writeNode(d, n); err != nil {
			return out, fmt.Errorf("node %s: %w", p.nodes[n].name, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// ipLink is one link of an `ip -d addr` listing.
type ipLink struct {
	index   int
	name    string
	peer    int // ifindex of the veth peer (0: not a veth)
	netnsid int // of the peer's (or the VXLAN device's link) namespace, -1: none
	kind    string
	mtu     int
	mac     string
	master  string
	addrs   []string // "10.0.0.2/16 brd 10.0.255.255 scope global"
	detail  string   // the kind line after link/ether, e.g. "vxlan id 4096 ..."
}

func writeIPAddr(b *strings.Builder, links []ipLink) {
	for _, l := range links {
		name := l.name
		if l.peer > 0 {
			name = fmt.Sprintf("%s@if%d", l.name, l.peer)
		}
		if l.kind == "loopback" {
			fmt.Fprintf(b, "%d: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n", l.index)
			b.WriteString("    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00 promiscuity 0  allmulti 0 minmtu 0 maxmtu 0 numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535 tso_max_size 524280 tso_max_segs 65535 gro_max_size 65536 \n")
			b.WriteString("    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n")
			continue
		}
		master := ""
		if l.master != "" {
			master = " master " + l.master
		}
		fmt.Fprintf(b, "%d: %s: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu %d qdisc noqueue%s state UP group default qlen 1000\n", l.index, name, l.mtu, master)
		nsid := ""
		if l.netnsid >= 0 {
			nsid = fmt.Sprintf(" link-netnsid %d", l.netnsid)
		}
		fmt.Fprintf(b, "    link/ether %s brd ff:ff:ff:ff:ff:ff%s promiscuity 0  allmulti 0 minmtu 68 maxmtu 65535 \n", l.mac, nsid)
		switch {
		case l.detail != "":
			fmt.Fprintf(b, "    %s \n", l.detail)
		case l.kind != "":
			fmt.Fprintf(b, "    %s numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535 tso_max_size 524280 tso_max_segs 65535 gro_max_size 65536 \n", l.kind)
		}
		if l.master != "" {
			b.WriteString("    bridge_slave state forwarding priority 32 cost 2 hairpin off guard off root_block off fastleave off learning on flood on \n")
		}
		for _, a := range l.addrs {
			fmt.Fprintf(b, "    inet %s %s\n       valid_lft forever preferred_lft forever\n", a, l.name)
		}
	}
}

func inet(a netip.Addr, p netip.Prefix) string {
	brd := nth(p, (1<<(32-p.Bits()))-1)
	return fmt.Sprintf("%s/%d brd %s scope global", a, p.Bits(), brd)
}

// sysctls renders sysctl.txt: the namespace knobs and each link's.
func sysctls(forward bool, ipvs bool, links []ipLink) string {
	var b strings.Builder
	fmt.Fprintf(&b, "net.ipv4.ip_forward = %d\n", map[bool]int{false: 0, true: 1}[forward])
	b.WriteString("net.ipv4.conf.all.rp_filter = 0\nnet.ipv4.conf.all.route_localnet = 0\n")
	if ipvs {
		b.WriteString("net.ipv4.vs.conntrack = 1\nnet.ipv4.vs.expire_nodest_conn = 1\nnet.ipv4.vs.conn_reuse_mode = 0\n")
	}
	b.WriteString("net.netfilter.nf_conntrack_count = 0\nnet.netfilter.nf_conntrack_max = 262144\nnet.bridge.bridge-nf-call-iptables = 1\n")
	for _, l := range links {
		fmt.Fprintf(&b, "net.ipv4.conf.%s.rp_filter = 0\nnet.ipv4.conf.%s.route_localnet = 0\n", l.name, l.name)
	}
	return b.String()
}

// saveHeader makes iptables-restore input look like iptables-save -c.
func save(restore string) string {
	var b strings.Builder
	b.WriteString("# Generated by iptables-save v1.8.9 (nf_tables) on Thu Jan  1 00:00:00 2026\n")
	for _, l := range strings.Split(strings.TrimSuffix(restore, "\n"), "\n") {
		if strings.HasPrefix(l, "-A ") {
			b.WriteString("[0:0] ")
		}
		b.WriteString(l)
		b.WriteString("\n")
		if l == "COMMIT" {
			b.WriteString("# Completed on Thu Jan  1 00:00:00 2026\n")
		}
	}
	return b.String()
}

type nsFiles map[string]string // file name -> content

func (p *swPlan) writeNode(dir string, n int) error {
	node := p.nodes[n]
	nss := map[string]nsFiles{}
	ports := make([]dockerrules.Port, len(p.services))
	for s, svc := range p.services {
		ports[s] = svc.port
	}
	lanIP := node.ip
	// host: lo, eth0, docker_gwbridge, the sandbox's and each task's veth
	host := []ipLink{{index: 1, kind: "loopback"},
		{index: 2, name: "eth0", netnsid: -1, mtu: 1500, mac: mac(lanIP), addrs: []string{inet(lanIP, swLAN)}},
		{index: 3, name: "docker_gwbridge", netnsid: -1, kind: "bridge", mtu: 1500, mac: "02:42:ac:12:00:01", addrs: []string{inet(nth(swGW, 1), swGW)}},
		{index: 4, name: "veth" + hash(7, node.name, "sbox"), peer: 3, netnsid: 0, kind: "veth", mtu: 1500, mac: "5a:" + hash(2, node.name, "a") + ":00:00:00:04", master: "docker_gwbridge"},
	}
	for k, ti := range node.local {
		host = append(host, ipLink{index: 5 + k, name: "veth" + hash(7, p.tasks[ti].netns), peer: 3, netnsid: k + 1, kind: "veth", mtu: 1500,
			mac: fmt.Sprintf("5a:%s:00:00:%02x:%02x", hash(2, node.name, "b"), (5+k)>>8, byte(5+k)), master: "docker_gwbridge"})
	}
	var hb strings.Builder
	writeIPAddr(&hb, host)
	nss["host"] = nsFiles{
		"ip-addr.txt":       hb.String(),
		"iptables-save.txt": save(dockerrules.Host("docker_gwbridge", swGW, nth(swGW, 2), ports)),
		"ip-route.txt":      fmt.Sprintf("default via %s dev eth0 \n%s dev docker_gwbridge proto kernel scope link src %s \n%s dev eth0 proto kernel scope link src %s \n", nth(swLAN, 1), swGW, nth(swGW, 1), swLAN, lanIP),
		"sysctl.txt":        sysctls(true, false, host),
		"ss.txt":            fmt.Sprintf("tcp LISTEN 0 4096 *:2377 *:*\ntcp LISTEN 0 4096 *:7946 *:*\nudp UNCONN 0 0 0.0.0.0:7946 0.0.0.0:*\nudp UNCONN 0 0 0.0.0.0:4789 0.0.0.0:*\n"),
	}

	// ingress_sbox: eth0 on ingress (with every VIP), eth1 on the gwbridge
	sboxAddrs := []string{inet(node.sandbox, swIngress)}
	var svcs []dockerrules.Service
	var ipvs strings.Builder
	for s, svc := range p.services {
		sboxAddrs = append(sboxAddrs, svc.vip.String()+"/32 scope global")
		ds := dockerrules.Service{Name: svc.name, FWMark: p.fwmark(n, s), VIP: svc.vip, Ports: []dockerrules.Port{svc.port}}
		fmt.Fprintf(&ipvs, "-A -f %d -s rr\n", ds.FWMark)
		for _, ti := range svc.tasks {
			ds.Backends = append(ds.Backends, p.tasks[ti].ip)
			fmt.Fprintf(&ipvs, "-a -f %d -r %s:0 -m -w 1\n", ds.FWMark, p.tasks[ti].ip)
		}
		svcs = append(svcs, ds)
	}
	sbox := []ipLink{{index: 1, kind: "loopback"},
		{index: 2, name: "eth0", peer: 4, netnsid: 0, kind: "veth", mtu: 1450, mac: mac(node.sandbox), addrs: sboxAddrs},
		{index: 3, name: "eth1", peer: 4, netnsid: 1, kind: "veth", mtu: 1500, mac: mac(nth(swGW, 2)), addrs: []string{inet(nth(swGW, 2), swGW)}},
	}
	var sb strings.Builder
	writeIPAddr(&sb, sbox)
	nss["ingress_sbox"] = nsFiles{
		"ip-addr.txt":         sb.String(),
		"iptables-save.txt":   save(dockerrules.IngressSandbox(swIngress, node.sandbox, svcs, dockerrules.SandboxOpts{IPVSMatch: true})),
		"ipvsadm.txt":         ipvs.String(),
		"ipvsadm-timeout.txt": "Timeout (tcp tcpfin udp): 900 120 300\n",
		"ip-route.txt":        fmt.Sprintf("default via %s dev eth1 \n%s dev eth0 proto kernel scope link src %s \n%s dev eth1 proto kernel scope link src %s \n", nth(swGW, 1), swIngress, node.sandbox, swGW, nth(swGW, 2)),
		"sysctl.txt":          sysctls(true, true, sbox),
		"ss.txt":              "",
	}

	// the ingress overlay: br0, vxlan0, veth0 to the sandbox, one per task
	ovl := []ipLink{{index: 1, kind: "loopback"},
		{index: 2, name: "br0", netnsid: -1, kind: "bridge", mtu: 1450, mac: "6e:1d:4a:0b:9c:" + hash(2, node.name, "br0"), addrs: []string{inet(nth(swIngress, 1), swIngress)}},
		{index: 3, name: "vxlan0", netnsid: 0, mtu: 1450, mac: "a2:5b:73:c0:1e:" + hash(2, node.name, "vx"), master: "br0",
			detail: fmt.Sprintf("vxlan id %d srcport 0 0 dstport 4789 nolearning proxy l2miss l3miss ttl auto ageing 300 udpcsum noudp6zerocsumtx noudp6zerocsumrx", swVNI)},
		{index: 4, name: "veth0", peer: 2, netnsid: 1, kind: "veth", mtu: 1450, mac: "32:13:a4:93:" + hash(2, node.name, "v0") + ":44", master: "br0"},
	}
	for k, ti := range node.local {
		ovl = append(ovl, ipLink{index: 5 + k, name: fmt.Sprintf("veth%d", k+1), peer: 2, netnsid: k + 2, kind: "veth", mtu: 1450,
			mac: fmt.Sprintf("0e:%s:00:00:%02x:%02x", hash(2, p.tasks[ti].netns), (5+k)>>8, byte(5+k)), master: "br0"})
	}
	var ob, fdb, neigh strings.Builder
	writeIPAddr(&ob, ovl)
	for k, ti := range node.local {
		fmt.Fprintf(&fdb, "%s dev veth%d master br0 \n", mac(p.tasks[ti].ip), k+1)
	}
	fmt.Fprintf(&fdb, "%s dev veth0 master br0 \n", mac(node.sandbox))
	remote := func(ip netip.Addr, on netip.Addr) {
		fmt.Fprintf(&fdb, "%s dev vxlan0 dst %s link-netnsid 0 self permanent\n", mac(ip), on)
		fmt.Fprintf(&neigh, "%s dev vxlan0 lladdr %s PERMANENT \n", ip, mac(ip))
	}
	for m, other := range p.nodes {
		if m != n {
			remote(other.sandbox, other.ip)
		}
	}
	for _, t := range p.tasks {
		if t.node != n {
			remote(t.ip, p.nodes[t.node].ip)
		}
	}
	nss[swOverlay] = nsFiles{
		"ip-addr.txt":       ob.String(),
		"iptables-save.txt": "",
		"bridge-fdb.txt":    fdb.String(),
		"ip-neigh.txt":      neigh.String(),
		"ip-route.txt":      fmt.Sprintf("%s dev br0 proto kernel scope link src %s \n", swIngress, nth(swIngress, 1)),
		"sysctl.txt":        sysctls(false, false, ovl),
		"ss.txt":            "",
	}

	// the tasks
	for k, ti := range node.local {
		t := p.tasks[ti]
		links := []ipLink{{index: 1, kind: "loopback"},
			{index: 2, name: "eth0", peer: 5 + k, netnsid: 0, kind: "veth", mtu: 1450, mac: mac(t.ip), addrs: []string{inet(t.ip, swIngress)}},
			{index: 3, name: "eth1", peer: 5 + k, netnsid: 1, kind: "veth", mtu: 1500, mac: mac(t.gw), addrs: []string{inet(t.gw, swGW)}},
		}
		var tb strings.Builder
		writeIPAddr(&tb, links)
		nss[t.netns] = nsFiles{
			"ip-addr.txt":       tb.String(),
			"iptables-save.txt": save(dockerrules.Task(t.ip, []dockerrules.Port{p.services[t.svc].port}, dockerrules.Modern)),
			"ip-route.txt":      fmt.Sprintf("default via %s dev eth1 \n%s dev eth0 proto kernel scope link src %s \n%s dev eth1 proto kernel scope link src %s \n", nth(swGW, 1), swIngress, t.ip, swGW, t.gw),
			"sysctl.txt":        sysctls(false, false, links),
			"ss.txt":            "tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:*\n",
		}
	}
	for name, files := range nss {
		d := filepath.Join(dir, "netns", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for f, content := range files {
			if err := os.WriteFile(filepath.Join(d, f), []byte(content), 0o644); err != nil {
				return err
			}
		}
	}
	return p.writeDocker(filepath.Join(dir, "docker"), n)
}

var swCreated = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// writeDocker writes the engine's view from node n: networks.json (the
// ingress network with --verbose: every service's tasks on every node,
// and the peers; docker_gwbridge), containers.json (the node's tasks) and
// services.json.
func (p *swPlan) writeDocker(dir string, n int) error {
	node := p.nodes[n]
	ingress := network.Inspect{
		Network: network.Network{Name: "ingress", ID: swIngressID, Created: swCreated, Scope: "swarm", Driver: "overlay", EnableIPv4: true, Ingress: true,
			Options: map[string]string{"com.docker.network.driver.overlay.vxlanid_list": fmt.Sprint(swVNI)}, Labels: map[string]string{},
			IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: swIngress, Gateway: nth(swIngress, 1)}}}},
		Containers: map[string]network.EndpointResource{},
		Services:   map[string]network.ServiceInfo{},
	}
	gw := network.Inspect{
		Network: network.Network{Name: "docker_gwbridge", ID: hash(64, "gwbridge", node.name), Created: swCreated, Scope: "local", Driver: "bridge", EnableIPv4: true,
			Options: map[string]string{"com.docker.network.bridge.enable_icc": "false", "com.docker.network.bridge.enable_ip_masquerade": "true", "com.docker.network.bridge.name": "docker_gwbridge"},
			Labels:  map[string]string{}, IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: swGW, Gateway: nth(swGW, 1)}}}},
		Containers: map[string]network.EndpointResource{
			"ingress-sbox": {Name: "gateway_ingress-sbox", EndpointID: hash(64, "ep", node.name, "gw-sbox"), IPv4Address: netip.PrefixFrom(nth(swGW, 2), 16)},
		},
	}
	ingress.Containers["ingress-sbox"] = network.EndpointResource{Name: "ingress-endpoint", EndpointID: hash(64, "ep", node.name, "sbox"), IPv4Address: netip.PrefixFrom(node.sandbox, 16)}
	for _, other := range p.nodes {
		ingress.Peers = append(ingress.Peers, network.PeerInfo{Name: other.id[:12], IP: other.ip})
	}
	var ctrs []container.InspectResponse
	for _, ti := range node.local {
		t := p.tasks[ti]
		svc := p.services[t.svc]
		name := p.taskName(ti)
		ingress.Containers[t.ctr] = network.EndpointResource{Name: name, EndpointID: hash(64, "ep", t.ctr), IPv4Address: netip.PrefixFrom(t.ip, 16)}
		gw.Containers[t.ctr] = network.EndpointResource{Name: "gateway_" + t.ctr[:12], EndpointID: hash(64, "gwep", t.ctr), IPv4Address: netip.PrefixFrom(t.gw, 16)}
		ctrs = append(ctrs, container.InspectResponse{
			ID: t.ctr, Created: swCreated.Format(time.RFC3339Nano), Name: "/" + name, Image: "sha256:" + hash(64, "image"), Driver: "overlay2", Platform: "linux",
			State: &container.State{Status: "running", Running: true, Pid: 4000 + ti, StartedAt: swCreated.Format(time.RFC3339Nano), FinishedAt: "0001-01-01T00:00:00Z"},
			Config: &container.Config{Hostname: t.ctr[:12], Image: "nginx:latest", Labels: map[string]string{
				"com.docker.swarm.node.id": node.id, "com.docker.swarm.service.id": svc.id, "com.docker.swarm.service.name": svc.name,
				"com.docker.swarm.task": "", "com.docker.swarm.task.id": t.id, "com.docker.swarm.task.name": name}},
			NetworkSettings: &container.NetworkSettings{SandboxID: t.netns + hash(52, "sandbox", t.netns), SandboxKey: "/var/run/docker/netns/" + t.netns,
				Networks: map[string]*network.EndpointSettings{"ingress": {NetworkID: swIngressID, EndpointID: hash(64, "ep", t.ctr),
					IPAddress: t.ip, IPPrefixLen: 16, IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: t.ip}, DNSNames: []string{name, t.ctr[:12]}}}},
		})
	}
	var services []swarm.Service
	for s, svc := range p.services {
		info := network.ServiceInfo{VIP: svc.vip, Ports: []string{fmt.Sprintf("Target: %d, Publish: %d", svc.port.Target, svc.port.Published)}, LocalLBIndex: 256 + s}
		for _, ti := range svc.tasks {
			t := p.tasks[ti]
			info.Tasks = append(info.Tasks, network.Task{Name: p.taskName(ti), EndpointID: hash(64, "ep", t.ctr), EndpointIP: t.ip,
				Info: map[string]string{"Host IP": p.nodes[t.node].ip.String()}})
		}
		ingress.Services[svc.name] = info
		pc := []swarm.PortConfig{{Protocol: network.IPProtocol(svc.port.Proto), TargetPort: uint32(svc.port.Target), PublishedPort: uint32(svc.port.Published), PublishMode: swarm.PortConfigPublishModeIngress}}
		spec := swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: pc}
		services = append(services, swarm.Service{ID: svc.id,
			Meta: swarm.Meta{Version: swarm.Version{Index: uint64(40 + s)}, CreatedAt: swCreated, UpdatedAt: swCreated},
			Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: svc.name, Labels: map[string]string{}},
				TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "nginx:latest"}}, EndpointSpec: &spec},
			Endpoint: swarm.Endpoint{Spec: spec, Ports: pc, VirtualIPs: []swarm.EndpointVirtualIP{{NetworkID: swIngressID, Addr: netip.PrefixFrom(svc.vip, 16)}}},
		})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, v := range map[string]any{"networks.json": []network.Inspect{gw, ingress}, "containers.json": ctrs, "services.json": services} {
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
