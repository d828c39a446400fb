package doctor

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// VXLANOverhead is what VXLAN over IPv4 adds to a frame: outer IPv4 (20),
// UDP (8), VXLAN (8) and the inner Ethernet header (14).
const VXLANOverhead = 50

// remoteBackend words the break of the way to a real server on another
// node: it is reached through the overlay's VXLAN device, which needs a
// neighbour entry (its MAC) and an FDB entry (the node behind that MAC),
// both programmed by the overlay driver, and the node must be the one
// Docker says the task runs on. Neither entry: no endpoint with that
// address exists (a stale backend). topology decided which; h says. what
// names the path ("tcp/8080", "VIP 10.0.1.2").
func (c *checker) remoteBackend(b topology.Backend, h topology.Hop, what string) {
	f := Finding{Severity: Error, Netns: h.Netns, Port: what, Evidence: h.Reason}
	switch h.Code {
	case topology.BreakWrongVTEP:
		f.Code = "vxlan-wrong-vtep"
		f.Summary = fmt.Sprintf("%s: backend %s (task %s) runs on node %s, but the overlay sends its traffic to %s", what, b.IP, orDefault(b.Task, "?"), b.Node, b.VTEP)
		f.Evidence = fmt.Sprintf("FDB entry for %s's MAC on %s has dst %s; `docker network inspect --verbose` gives Host IP %s", b.IP, b.Via, b.VTEP, b.Node)
		f.Confirm = c.in(h.Netns, "ip neigh; bridge fdb show") + "; docker network inspect --verbose " + c.networkOf(h.Netns)
		f.Fix = "a stale peer entry (the node was re-addressed or the task moved while gossip was down): check TCP/UDP 7946 between the nodes, then `docker service update --force SERVICE` to re-program the peers"
	case topology.BreakNoFDB:
		if c.isStale(h.Netns, b.IP) {
			return // stale-neigh names the cause
		}
		f.Code = "vxlan-no-fdb"
		f.Summary = fmt.Sprintf("%s: backend %s is on another node but the overlay has no FDB entry telling VXLAN which node", what, b.IP)
		f.Confirm = c.in(h.Netns, "ip neigh; bridge fdb show")
		f.Fix = "the overlay driver did not program the peer: check gossip (TCP/UDP 7946) between the nodes; `docker network inspect " + c.networkOf(h.Netns) + " -v` shows the peers; restarting the task or dockerd re-programs it"
	default:
		f.Code = "stale-backend"
		f.Summary = fmt.Sprintf("%s: IPVS real server %s belongs to no task: no namespace here owns it and the overlay knows no endpoint with that address", what, b.IP)
		f.Confirm = c.in(h.Netns, "ipvsadm -Ln")
		f.Fix = fmt.Sprintf("remove it (`ipvsadm -d -f FWMARK -r %s` in %s) or let dockerd reconcile: `docker service update --force SERVICE`", b.IP, h.Netns)
	}
	c.add(f)
}

// networkOf names the Docker network of an overlay namespace for the
// commands a finding suggests: Docker's name when known, else "ingress"
// for the ingress overlay, else the namespace's network id part.
func (c *checker) networkOf(netns string) string {
	if ns := c.m.Lookup(netns); ns != nil && ns.Docker != nil && ns.Docker.Network != "" {
		return ns.Docker.Network
	}
	if _, id, ok := strings.Cut(netns, "-"); ok {
		return id
	}
	return "ingress"
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// mtu: every leg of an overlay must fit in the VXLAN device, and the VXLAN
// device plus its encapsulation must fit in the underlay.
func (c *checker) mtu() {
	host := c.m.Lookup("host")
	c.cov.ran("mtu")
	for _, ns := range c.m.Namespaces {
		if ns.Links == nil {
			c.cov.skip("mtu", "ip addr", ns.Name)
		}
		if ns.Role != topology.RoleOverlay {
			continue
		}
		var vx *topology.Link
		for _, l := range ns.Links {
			if l.Kind == "vxlan" {
				vx = l
			}
		}
		if vx == nil {
			continue
		}
		for _, l := range ns.Links {
			if l.Kind != "veth" || l.MTU <= vx.MTU {
				continue
			}
			where := ns.Name + "/" + l.Name
			if l.Peer != nil && l.Peer.Netns != "" {
				where += " (peer " + l.Peer.Netns + "/" + l.Peer.Ifname + ")"
			}
			c.add(Finding{Code: "mtu-mismatch", Severity: Error, Netns: ns.Name,
				Summary:  fmt.Sprintf("overlay leg %s has MTU %d, larger than the VXLAN device's %d: large packets to remote tasks are dropped", where, l.MTU, vx.MTU),
				Evidence: fmt.Sprintf("%s mtu %d, %s/%s mtu %d", where, l.MTU, ns.Name, vx.Name, vx.MTU),
				Confirm:  c.in(ns.Name, "ip -d link"),
				Fix:      fmt.Sprintf("set the leg back to %d (ip link set %s mtu %d), or create the overlay with --opt com.docker.network.driver.mtu", vx.MTU, l.Name, vx.MTU)})
		}
		for _, l := range ns.Links {
			if l.Peer == nil || l.Peer.Netns == "" {
				continue
			}
			peer := c.m.Lookup(l.Peer.Netns)
			if peer == nil {
				continue
			}
			if pl := peer.Link(l.Peer.Ifname); pl != nil && pl.MTU > vx.MTU {
				c.add(Finding{Code: "mtu-mismatch", Severity: Error, Netns: peer.Name,
					Summary:  fmt.Sprintf("%s/%s (on overlay %s) has MTU %d, larger than the VXLAN device's %d: large packets to remote tasks are dropped", peer.Name, pl.Name, ns.Name, pl.MTU, vx.MTU),
					Evidence: fmt.Sprintf("%s/%s mtu %d, %s/%s mtu %d", peer.Name, pl.Name, pl.MTU, ns.Name, vx.Name, vx.MTU),
					Confirm:  c.in(peer.Name, "ip link show "+pl.Name),
					Fix:      fmt.Sprintf("ip link set %s mtu %d inside %s (or recreate the task)", pl.Name, vx.MTU, peer.Name)})
			}
		}
		if _, u := underlay(host, vx); u != nil && vx.MTU+VXLANOverhead > u.MTU {
			c.add(Finding{Code: "mtu-underlay", Severity: Error, Netns: ns.Name,
				Summary:  fmt.Sprintf("VXLAN device %s/%s (MTU %d) plus %d bytes of encapsulation does not fit the underlay %s (MTU %d)", ns.Name, vx.Name, vx.MTU, VXLANOverhead, u.Name, u.MTU),
				Evidence: fmt.Sprintf("%s mtu %d + %d > host/%s mtu %d", vx.Name, vx.MTU, VXLANOverhead, u.Name, u.MTU),
				Confirm:  "ip link show " + u.Name,
				Fix:      fmt.Sprintf("lower the overlay MTU to %d (docker network create --opt com.docker.network.driver.mtu=%d) or raise the underlay's", u.MTU-VXLANOverhead, u.MTU-VXLANOverhead)})
		}
	}
}

// underlay is the host address VXLAN packets leave from and its link: the
// VTEP's local address when the host owns it, else the node's address and
// uplink (topology.NodeAddress).
func underlay(host *topology.Namespace, vx *topology.Link) (netip.Addr, *topology.Link) {
	if host != nil && vx.VXLAN != nil {
		if a := vx.VXLAN.Local; a.IsValid() {
			if l, ok := host.Owns(a); ok {
				return a, l
			}
		}
	}
	return topology.NodeAddress(host)
}

// forwarding: the host forwards published traffic to the sandbox, the
// sandbox forwards it to the tasks (IPVS in NAT mode, or its emulation).
func (c *checker) forwarding() {
	for _, ns := range c.m.Namespaces {
		if ns.Role != topology.RoleHost && ns.Role != topology.RoleIngressSandbox {
			continue
		}
		if !c.need("forwarding", "sysctl", ns.Name, ns.Sysctls != nil) || ns.Sysctls["net.ipv4.ip_forward"] != "0" {
			continue
		}
		c.add(Finding{Code: "forwarding-disabled", Severity: Error, Netns: ns.Name,
			Summary:  fmt.Sprintf("IPv4 forwarding is off in %s: published traffic cannot be forwarded towards the tasks", ns.Name),
			Evidence: "net.ipv4.ip_forward = 0",
			Confirm:  c.in(ns.Name, "sysctl net.ipv4.ip_forward"),
			Fix:      c.in(ns.Name, "sysctl -w net.ipv4.ip_forward=1") + " (and make it persistent; something on the node turned it off)"})
	}
}

// rpFilter: strict reverse-path filtering (1) drops packets that arrive on
// an interface other than the route back to their source, which the
// sandbox's two legs and multi-homed hosts produce.
func (c *checker) rpFilter() {
	for _, ns := range c.m.Namespaces {
		if ns.Role != topology.RoleIngressSandbox || !c.need("rp-filter", "sysctl", ns.Name, ns.Sysctls != nil) {
			continue
		}
		all := ns.Sysctls["net.ipv4.conf.all.rp_filter"]
		for _, l := range ns.Links {
			v := ns.Sysctls["net.ipv4.conf."+l.Name+".rp_filter"]
			if l.Name == "lo" || (v != "1" && all != "1") {
				continue
			}
			c.add(Finding{Code: "rp-filter-strict", Severity: Warning, Netns: ns.Name,
				Summary:  fmt.Sprintf("strict reverse-path filtering on %s/%s: replies routed back through another leg are dropped", ns.Name, l.Name),
				Evidence: fmt.Sprintf("net.ipv4.conf.all.rp_filter = %s, net.ipv4.conf.%s.rp_filter = %s", orDefault(all, "?"), l.Name, orDefault(v, "?")),
				Confirm:  c.in(ns.Name, "sysctl -a 2>/dev/null | grep rp_filter"),
				Fix:      c.in(ns.Name, "sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf."+l.Name+".rp_filter=2") + " (loose mode)"})
		}
	}
}

// vxlanBlocked: the host's filter INPUT/OUTPUT must let VXLAN (UDP 4789)
// from and to the other nodes' VTEPs through.
func (c *checker) vxlanBlocked() {
	host := c.m.Lookup("host")
	for _, ns := range c.m.Namespaces {
		if ns.Role != topology.RoleOverlay {
			continue
		}
		if host == nil || host.Firewall == nil {
			c.cov.skip("vxlan firewall", "iptables-save", "host")
			continue
		}
		if !c.need("vxlan firewall", "bridge fdb", ns.Name, ns.FDB != nil) {
			continue
		}
		for _, l := range ns.Links {
			if l.Kind != "vxlan" {
				continue
			}
			port := 4789
			if l.VXLAN != nil && l.VXLAN.Port != 0 {
				port = l.VXLAN.Port
			}
			local, u := underlay(host, l)
			if u == nil {
				continue
			}
			for _, peer := range vteps(ns) {
				in := topology.Packet{Proto: "udp", Src: peer, SPort: 40000, Dst: local, DPort: port, InIface: u.Name}
				out := topology.Packet{Proto: "udp", Src: local, SPort: 40000, Dst: peer, DPort: port, OutIface: u.Name}
				for _, t := range []struct {
					chain string
					pkt   topology.Packet
				}{{"INPUT", in}, {"OUTPUT", out}} {
					d := topology.Eval(host, "filter", t.chain, &t.pkt)
					if !d.Verdict.Drops() {
						continue
					}
					ev := "policy " + d.Policy
					if d.By != nil {
						ev = ruleEvidence(d.By.Rule.Text, d.By.Rule.Packets)
					}
					c.add(Finding{Code: "vxlan-blocked", Severity: Error, Netns: "host",
						Summary:  fmt.Sprintf("VXLAN (udp/%d) between this node and %s is dropped by filter %s: the routing mesh cannot reach tasks on other nodes", port, peer, t.chain),
						Evidence: ev,
						Confirm:  "iptables-save -c -t filter | grep -n -e " + strconv.Itoa(port) + " -e ':" + t.chain + "'",
						Fix:      fmt.Sprintf("allow udp/%d (and TCP/UDP 7946 for gossip) between the swarm nodes, before that rule", port)})
				}
			}
		}
	}
}

// vteps are the remote VTEPs an overlay's FDB points at.
func vteps(ns *topology.Namespace) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, f := range ns.FDB {
		if a := f.Dst; a.IsValid() && !seen[a] && !a.IsUnspecified() {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// conntrackFull: a full table drops new connections silently.
func (c *checker) conntrackFull() {
	for _, ns := range c.m.Namespaces {
		switch ns.Role {
		case topology.RoleHost, topology.RoleIngressSandbox, topology.RoleLB:
			c.need("conntrack table", "sysctl", ns.Name, ns.Sysctls != nil)
		}
		n, err1 := strconv.Atoi(ns.Sysctls["net.netfilter.nf_conntrack_count"])
		max, err2 := strconv.Atoi(ns.Sysctls["net.netfilter.nf_conntrack_max"])
		if err1 != nil || err2 != nil || max == 0 || n*10 < max*9 {
			continue
		}
		sev := Warning
		if n >= max {
			sev = Error
		}
		c.add(Finding{Code: "conntrack-full", Severity: sev, Netns: ns.Name,
			Summary:  fmt.Sprintf("the conntrack table of %s is %d%% full: new connections are dropped when it fills", ns.Name, n*100/max),
			Evidence: fmt.Sprintf("nf_conntrack_count %d of nf_conntrack_max %d", n, max),
			Confirm:  c.in(ns.Name, "conntrack -C; sysctl net.netfilter.nf_conntrack_max"),
			Fix:      "raise net.netfilter.nf_conntrack_max, or find what opens so many connections (conntrack -L | sort | uniq -c)"})
	}
}

// ipvsKernel reports IPVS settings that decide what happens to connections
// when backends go away.
func (c *checker) ipvsKernel() {
	for _, ns := range c.m.Namespaces {
		if ns.IPVS == nil || !ns.IPVS.Available || len(ns.IPVS.Services) == 0 {
			continue
		}
		if c.need("ipvs timeouts", "ipvsadm -L --timeout", ns.Name, ns.IPVS.Timeouts != nil) {
			c.ipvsTimeouts(ns)
		}
		if !c.need("ipvs settings", "sysctl", ns.Name, ns.Sysctls != nil) {
			continue
		}
		if v := ns.Sysctls["net.ipv4.vs.expire_nodest_conn"]; v == "0" {
			c.add(Finding{Code: "ipvs-expire-nodest-off", Severity: Info, Netns: ns.Name,
				Summary:  "connections to a removed real server are not expired: clients of a stopped task hang until they time out",
				Evidence: "net.ipv4.vs.expire_nodest_conn = 0",
				Confirm:  c.in(ns.Name, "sysctl net.ipv4.vs.expire_nodest_conn"),
				Fix:      c.in(ns.Name, "sysctl -w net.ipv4.vs.expire_nodest_conn=1")})
		}
		if v := ns.Sysctls["net.ipv4.vs.conn_reuse_mode"]; v != "" {
			c.add(Finding{Code: "ipvs-conn-reuse-mode", Severity: Info, Netns: ns.Name,
				Summary:  "IPVS connection reuse mode is " + v + " (1: a reused source port is rescheduled, which delays it by up to a second)",
				Evidence: "net.ipv4.vs.conn_reuse_mode = " + v,
				Confirm:  c.in(ns.Name, "sysctl net.ipv4.vs.conn_reuse_mode"),
				Fix:      "none needed unless clients reuse ports quickly; the IPVS idle timeout (ipvsadm -L --timeout, 900 s for TCP) must exceed your keep-alive"})
		}
	}
}

// ipvsTimeouts reports IPVS's idle timeouts: a connection idle longer than
// the TCP timeout (900 s by default) is forgotten by the balancer, and the
// client's next packet is balanced afresh and reset by a task that never
// saw the connection, while the client believes it is alive.
func (c *checker) ipvsTimeouts(ns *topology.Namespace) {
	to := ns.IPVS.Timeouts
	if to == nil {
		return
	}
	vals := fmt.Sprintf("tcp %ds, tcpfin %ds, udp %ds", to.TCP, to.TCPFin, to.UDP)
	confirm := c.in(ns.Name, "ipvsadm -L --timeout")
	ka := int(c.o.KeepAlive.Seconds())
	if ka > 0 && to.TCP > 0 && ka >= to.TCP {
		c.add(Finding{Code: "ipvs-idle-timeout", Severity: Warning, Netns: ns.Name,
			Summary:  fmt.Sprintf("IPVS forgets idle TCP connections after %ds, shorter than the application's keep-alive of %ds: idle connections through %s are cut while the client thinks they live", to.TCP, ka, ns.Name),
			Evidence: "IPVS timeouts: " + vals + fmt.Sprintf("; keep-alive given: %ds", ka),
			Confirm:  confirm,
			Fix:      fmt.Sprintf("make the application's (or the kernel's net.ipv4.tcp_keepalive_time) keep-alive shorter than %ds, or raise IPVS's: %s", to.TCP, c.in(ns.Name, fmt.Sprintf("ipvsadm --set %d %d %d", ka+60, to.TCPFin, to.UDP)))})
		return
	}
	c.add(Finding{Code: "ipvs-timeouts", Severity: Info, Netns: ns.Name,
		Summary:  fmt.Sprintf("IPVS in %s forgets idle connections after: %s; keep application keep-alives below the TCP value", ns.Name, vals),
		Evidence: "IPVS timeouts: " + vals,
		Confirm:  confirm,
		Fix:      "none needed unless connections idle longer than that (run doctor with --keepalive to compare)"})
}
