package swarm

import (
	"net/netip"
	"regexp"
	"sort"
	"sync"

	"github.com/meshtrace/meshtrace/topology"
)

// node is what the checks compare of one node, taken from its model when
// it is added (the model itself can then go: a swarm of fifty nodes is
// fifty models of a few hundred namespaces each, the digests are a small
// part of them).
type node struct {
	name   string
	source string
	read   bool // a model was given
	// addr is the node's address (topology.NodeAddress), addrs every
	// address of its host namespace: the FDB of another node sends to one.
	addr  netip.Addr
	addrs map[netip.Addr]bool
	host  *hostDigest
	// sandbox is the ingress sandbox's load balancer, lbs the lb_
	// namespaces' by network key, overlays the overlay namespaces by
	// network key.
	sandbox  *lbDigest
	lbs      map[string]*lbDigest
	overlays map[string]*overlayDigest
	// endpoints are the addresses the node's endpoints (tasks, the
	// ingress sandbox, load balancers) have on the overlays, by network
	// key: what the other nodes' overlays must know.
	endpoints map[string]map[netip.Addr]endpoint
	docker    *dockerDigest
	cells     map[CheckName]Status
}

// hostDigest is what the checks read of the host namespace.
type hostDigest struct {
	// nat is false when its nat table was not collected; dnats are the
	// ports it DNATs (hostDNATs).
	nat     bool
	dnats   map[topology.ProtoPort]bool
	fw      bool // a firewall was collected
	backend topology.FirewallBackend
	// xfrm is false when its xfrm state was not collected.
	xfrm      bool
	xfrmSAs   int
	xfrmPeers []topology.XfrmPeer
}

// lbDigest is a load-balancing namespace (ingress sandbox, lb_).
type lbDigest struct {
	name     string
	ipvs     *topology.IPVS // nil: not collected (its services are kept)
	firewall bool           // iptables collected
	mangle   bool           // its mangle table collected
	services []*topology.IPVSService
	marks    []markRule
	marked   map[topology.ProtoPort]bool // ports PREROUTING marks
	sysctls  topology.Sysctls            // the vs.* ones; nil: not collected
	key      string                      // its network key ("" unknown yet: the sandbox's)
}

// markRule is a MARK rule of a load balancer's mangle table: the mark and
// what it is set for (a published port, or a VIP).
type markRule struct {
	mark  uint32
	proto string
	port  int
	vip   netip.Addr
}

// overlayDigest is an overlay namespace.
type overlayDigest struct {
	name string
	// vxlan is false when no VXLAN device with its attributes was read.
	vxlan          bool
	vni, port, mtu int
	subnet         netip.Prefix
	vxDevs         map[string]bool
	neigh          []topology.Neigh // nil: not collected
	fdb            []topology.FDB   // nil: not collected
}

// endpoint is an address an endpoint namespace has on an overlay network.
type endpoint struct {
	mac        topology.MAC
	svc, label string
	netns      string
}

// dockerDigest is what the node's engine said.
type dockerDigest struct {
	networks   []dockerNet
	services   []topology.DockerService
	containers []topology.DockerContainer
}

type dockerNet struct {
	id, name, scope string
	ingress         bool
	subnet          netip.Prefix
	peers           []netip.Addr // nil: not listed
	// taskNodes are, for `--verbose`'s tasks, their address and node.
	taskNodes [][2]netip.Addr
}

// placed is an endpoint of a network and the node it is on.
type placed struct {
	ip netip.Addr
	n  *node
	e  endpoint
}

// task is a task that runs, as its node's engine says (docker inspect of
// its containers).
type task struct {
	name, service string
	node          *node
	// ips are its addresses by network key.
	ips map[string]netip.Addr
}

// service is a Docker service as the managers' `docker service inspect`
// says.
type service struct {
	name  string
	ports []topology.DockerPort
	// vips by network key.
	vips map[string]netip.Addr
}

// cluster is every node's digest, and what the nodes say together.
type cluster struct {
	nodes []*node
	// byAddr finds the node a host address belongs to.
	byAddr map[netip.Addr]*node
	// netName is the Docker name of each network key, netKey the key of
	// each name, ingress the ingress network's key ("" unknown).
	netName map[string]string
	netKey  map[string]string
	ingress string
	// services by name; tasks that run, and by network key and address.
	services map[string]*service
	tasks    []*task
	taskAt   map[string]map[netip.Addr]*task
	// bySvc is, per service and network key, its tasks' addresses there.
	bySvc map[string]map[string]map[netip.Addr]*task
	// tasksKnown: every node's engine told its tasks (Docker's metadata
	// was collected everywhere), so an address no task has is no task's.
	tasksKnown bool
	// endpoints are every node's endpoints by network key, in address
	// order, and endpointAt the same by address.
	endpoints  map[string][]placed
	endpointAt map[string]map[netip.Addr]placed
	// elsewhere are, by network key, the addresses some node's overlay
	// or Docker's task list places on a node that was not collected
	// (built by uncollectedAt).
	elsewhere map[string]map[netip.Addr]netip.Addr

	// dests are, per network key and service, each node's real servers
	// (backends fills it); unjudged the real servers backends could not
	// judge without Docker's tasks, compared across the nodes at the end.
	dests    map[string]map[string]map[*node]map[netip.Addr]bool
	unjudged []unjudgedDests

	findings []Finding
	skipped  []NotChecked
}

// Checker compares nodes added one at a time: Add keeps what the checks
// compare of a node's model (the caller may drop the model then), Report
// compares them. Add may be called from several goroutines.
type Checker struct {
	mu    sync.Mutex
	nodes []*node
}

// Add takes a node (its digest).
func (k *Checker) Add(in Node) {
	n := digest(in)
	k.mu.Lock()
	k.nodes = append(k.nodes, n)
	k.mu.Unlock()
}

// Report compares the nodes added, in name order.
func (k *Checker) Report() *Report {
	k.mu.Lock()
	nodes := append([]*node(nil), k.nodes...)
	k.mu.Unlock()
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].name < nodes[j].name })
	c := newCluster(nodes)
	c.backends()
	c.fdb()
	c.published()
	c.config()
	c.spi()
	c.gossip()
	return c.report()
}

var (
	overlayNetnsRe = regexp.MustCompile(`^[0-9]+-([0-9a-z]+)$`)
	lbNetnsRe      = regexp.MustCompile(`^lb_([0-9a-z]+)$`)
)

// keyLen is how much of a network id its namespaces' names carry in common:
// the overlay's "<epoch>-<10 chars>", the load balancer's "lb_<9 chars>".
const keyLen = 9

// netKeyOf is the network key of an id or an id prefix.
func netKeyOf(id string) string {
	if len(id) > keyLen {
		return id[:keyLen]
	}
	return id
}

// nsNetKey is the network key of an overlay or load-balancer namespace,
// from its name ("" for another).
func nsNetKey(ns *topology.Namespace) string {
	if s := overlayNetnsRe.FindStringSubmatch(ns.Name); s != nil {
		return netKeyOf(s[1])
	}
	if s := lbNetnsRe.FindStringSubmatch(ns.Name); s != nil {
		return netKeyOf(s[1])
	}
	return ""
}

// digest takes from a node's model what the checks compare.
func digest(in Node) *node {
	n := &node{name: in.Name, addrs: map[netip.Addr]bool{}, lbs: map[string]*lbDigest{},
		overlays: map[string]*overlayDigest{}, endpoints: map[string]map[netip.Addr]endpoint{}, cells: map[CheckName]Status{}}
	m := in.Model
	if m == nil {
		return n
	}
	n.read, n.source = true, m.Source
	var host, sandbox *topology.Namespace
	for _, ns := range m.Namespaces {
		switch {
		case ns.Role == topology.RoleHost || ns.Name == "host":
			host = ns
		case ns.Role == topology.RoleIngressSandbox:
			if sandbox == nil {
				sandbox = ns
				n.sandbox = lbOf(ns)
			}
		case ns.Role == topology.RoleOverlay:
			if k := nsNetKey(ns); k != "" {
				n.overlays[k] = overlayOf(ns)
			}
		case ns.Role == topology.RoleLB:
			if k := nsNetKey(ns); k != "" {
				n.lbs[k] = lbOf(ns)
				n.lbs[k].key = k
			}
		}
	}
	n.addr, _ = topology.NodeAddress(host)
	if host != nil {
		n.host = hostOf(host)
		for _, l := range host.Links {
			for _, p := range l.Addrs {
				if a := p.Addr(); !a.IsLoopback() && !a.IsLinkLocalUnicast() {
					n.addrs[a] = true
				}
			}
		}
	}
	n.indexEndpoints(m, host, sandbox)
	if m.Docker != nil {
		n.docker = dockerOf(m.Docker)
	}
	return n
}

func hostOf(ns *topology.Namespace) *hostDigest {
	h := &hostDigest{fw: ns.Firewall != nil}
	if ns.Firewall != nil {
		h.backend = ns.Firewall.Backend
	}
	if nat := ns.Firewall.Table("nat"); nat != nil {
		h.nat, h.dnats = true, hostDNATs(nat)
	}
	if ns.Xfrm != nil {
		h.xfrm, h.xfrmSAs = true, len(ns.Xfrm.States)
		h.xfrmPeers, _ = ns.XfrmPeers()
	}
	return h
}

func lbOf(ns *topology.Namespace) *lbDigest {
	lb := &lbDigest{name: ns.Name, ipvs: ns.IPVS, firewall: ns.Firewall != nil}
	for _, s := range ns.LBServices() {
		if s.FWMark != 0 {
			lb.services = append(lb.services, s)
		}
	}
	if mangle := ns.Firewall.Table("mangle"); mangle != nil {
		lb.mangle, lb.marked = true, map[topology.ProtoPort]bool{}
		for _, p := range ns.MarkedPorts() {
			lb.marked[p] = true
		}
		for _, ch := range mangle.Chains {
			for _, r := range ch.All() {
				if r.Target != "MARK" || r.SetMark == nil {
					continue
				}
				mr := markRule{mark: r.SetMark.Apply(0)}
				if mr.mark == 0 {
					continue
				}
				if a, ok := r.MarksDst(); ok {
					mr.vip = a
				} else if r.Proto != nil && r.DPort() != 0 {
					mr.proto, mr.port = r.Proto.Value, r.DPort()
				} else {
					continue
				}
				lb.marks = append(lb.marks, mr)
			}
		}
	}
	if ns.Sysctls != nil {
		lb.sysctls = topology.Sysctls{}
		for _, k := range vsSysctls {
			if v, ok := ns.Sysctls[k]; ok {
				lb.sysctls[k] = v
			}
		}
	}
	return lb
}

func overlayOf(ns *topology.Namespace) *overlayDigest {
	ov := &overlayDigest{name: ns.Name, neigh: ns.Neighbours, fdb: ns.FDB, vxDevs: map[string]bool{}, subnet: subnet(ns)}
	for _, l := range ns.Links {
		if l.Kind == "vxlan" || l.VXLAN != nil {
			ov.vxDevs[l.Name] = true
		}
	}
	if vx := vxlanLink(ns); vx != nil && vx.VXLAN != nil {
		ov.vxlan, ov.vni, ov.port = true, vx.VXLAN.ID, vx.VXLAN.Port
	}
	ov.mtu = overlayMTU(ns)
	return ov
}

func dockerOf(d *topology.DockerMeta) *dockerDigest {
	out := &dockerDigest{services: d.Services, containers: d.Containers}
	for _, nw := range d.Networks {
		dn := dockerNet{id: nw.ID, name: nw.Name, scope: nw.Scope, ingress: nw.Ingress, subnet: nw.Subnet}
		if nw.Peers != nil {
			dn.peers = []netip.Addr{}
			for _, p := range nw.Peers {
				dn.peers = append(dn.peers, p.IP)
			}
		}
		for _, t := range nw.Tasks {
			if t.Node.IsValid() {
				dn.taskNodes = append(dn.taskNodes, [2]netip.Addr{t.IP, t.Node})
			}
		}
		out.networks = append(out.networks, dn)
	}
	return out
}

// subnet is the overlay's subnet: its bridge's address prefix.
func subnet(ov *topology.Namespace) netip.Prefix {
	for _, l := range ov.Links {
		if l.Kind != "bridge" {
			continue
		}
		for _, p := range l.Addrs {
			if p.Addr().Is4() && p.Bits() < 32 {
				return p.Masked()
			}
		}
	}
	return netip.Prefix{}
}

// indexEndpoints finds, for each overlay of the node, the addresses its
// endpoint namespaces hold on that overlay's subnet (an endpoint's own
// address has the subnet's length; a VIP, /32, is no endpoint).
func (n *node) indexEndpoints(m *topology.Model, host, sandbox *topology.Namespace) {
	nets := map[string]netip.Prefix{}
	for k, ov := range n.overlays {
		if ov.subnet.IsValid() {
			nets[k] = ov.subnet
		}
	}
	for _, ns := range m.Namespaces {
		if ns == host || ns.Role == topology.RoleOverlay {
			continue
		}
		for _, l := range ns.Links {
			if l.Kind == "loopback" || l.Name == "lo" {
				continue
			}
			for _, p := range l.Addrs {
				for k, sub := range nets {
					if p.Bits() != sub.Bits() || !sub.Contains(p.Addr()) || p.Addr() == sub.Addr() {
						continue
					}
					if n.endpoints[k] == nil {
						n.endpoints[k] = map[netip.Addr]endpoint{}
					}
					svc, label := endpointLabel(ns)
					n.endpoints[k][p.Addr()] = endpoint{mac: l.MAC, svc: svc, label: label, netns: ns.Name}
					if ns == sandbox && n.sandbox.key == "" {
						n.sandbox.key = k
					}
				}
			}
		}
	}
}

func newCluster(nodes []*node) *cluster {
	c := &cluster{nodes: nodes, byAddr: map[netip.Addr]*node{}, netName: map[string]string{}, netKey: map[string]string{},
		services: map[string]*service{}, taskAt: map[string]map[netip.Addr]*task{},
		bySvc: map[string]map[string]map[netip.Addr]*task{}, tasksKnown: true,
		endpoints: map[string][]placed{}, endpointAt: map[string]map[netip.Addr]placed{}}
	for _, n := range nodes {
		for a := range n.addrs {
			if _, taken := c.byAddr[a]; !taken {
				c.byAddr[a] = n
			}
		}
		c.learnDocker(n)
		if n.sandbox != nil && n.sandbox.key != "" && c.ingress == "" {
			c.ingress = n.sandbox.key
		}
		for k, eps := range n.endpoints {
			if c.endpointAt[k] == nil {
				c.endpointAt[k] = map[netip.Addr]placed{}
			}
			for a, e := range eps {
				p := placed{a, n, e}
				c.endpoints[k] = append(c.endpoints[k], p)
				c.endpointAt[k][a] = p
			}
		}
	}
	for _, eps := range c.endpoints {
		sort.Slice(eps, func(i, j int) bool { return eps[i].ip.Less(eps[j].ip) })
	}
	for _, n := range nodes {
		c.learnTasks(n)
	}
	return c
}

// learnDocker takes the networks' names and the services from the node's
// engine.
func (c *cluster) learnDocker(n *node) {
	d := n.docker
	if d == nil {
		return
	}
	for _, nw := range d.networks {
		if nw.id == "" {
			continue
		}
		k := netKeyOf(nw.id)
		c.netName[k] = nw.name
		c.netKey[nw.name] = k
		if nw.ingress {
			c.ingress = k
		}
	}
	for _, s := range d.services {
		svc := c.services[s.Name]
		if svc == nil {
			svc = &service{name: s.Name, vips: map[string]netip.Addr{}}
			c.services[s.Name] = svc
		}
		if len(svc.ports) == 0 {
			svc.ports = s.Ports
		}
		for id, v := range s.VIPs {
			svc.vips[netKeyOf(id)] = v.Addr()
		}
	}
}

// learnTasks takes the tasks that run on the node from its engine's
// containers.
func (c *cluster) learnTasks(n *node) {
	if n.docker == nil {
		c.tasksKnown = false
		return
	}
	for _, ct := range n.docker.containers {
		if ct.Service == "" {
			continue
		}
		t := &task{name: ct.Task, service: ct.Service, node: n, ips: map[string]netip.Addr{}}
		if t.name == "" {
			t.name = ct.Name
		}
		for name, ip := range ct.Networks {
			k, ok := c.netKey[name]
			if !ok {
				continue
			}
			t.ips[k] = ip
			if c.taskAt[k] == nil {
				c.taskAt[k] = map[netip.Addr]*task{}
			}
			c.taskAt[k][ip] = t
			if c.bySvc[t.service] == nil {
				c.bySvc[t.service] = map[string]map[netip.Addr]*task{}
			}
			if c.bySvc[t.service][k] == nil {
				c.bySvc[t.service][k] = map[netip.Addr]*task{}
			}
			c.bySvc[t.service][k][ip] = t
		}
		c.tasks = append(c.tasks, t)
		if c.services[t.service] == nil {
			c.services[t.service] = &service{name: t.service, vips: map[string]netip.Addr{}}
		}
	}
}

// netLabel names a network key: Docker's name, else the key.
func (c *cluster) netLabel(k string) string {
	if name := c.netName[k]; name != "" {
		return name
	}
	return k
}

// tasksOf are the addresses the service's tasks have on network k.
func (c *cluster) tasksOf(svc, k string) map[netip.Addr]*task { return c.bySvc[svc][k] }

// sortedAddrs returns the map's keys in address order.
func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
