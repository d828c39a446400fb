package doctor

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// subnetExhausted: a swarm network hands every task, every service VIP and
// every node's load-balancer endpoint an address of its subnet; when they
// run out, new tasks stay in New with "could not find an available IP"
// (moby#43052). The addresses counted are only those Docker's metadata
// names (this node's endpoints, every task `network inspect --verbose`
// lists, the services' VIPs, the gateway): a lower bound, so a finding is
// never an overstatement.
func (c *checker) subnetExhausted() {
	const check = "subnet exhaustion"
	d := c.m.Docker
	if !c.need(check, "docker network inspect", "docker", d != nil && d.Networks != nil) {
		return
	}
	for _, n := range d.Networks {
		if !(n.Driver == "overlay" || n.Ingress) || !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() || n.Subnet.Bits() > 30 {
			continue
		}
		p := n.Subnet.Masked()
		used := map[netip.Addr]bool{}
		count := func(a netip.Addr) {
			if a.IsValid() && p.Contains(a) {
				used[a.Unmap()] = true
			}
		}
		count(n.Gateway)
		for _, a := range n.Endpoints {
			count(a)
		}
		for _, t := range n.Tasks {
			count(t.IP)
		}
		vips := 0
		for _, s := range d.Services {
			if v, ok := s.VIPs[n.ID]; ok && p.Contains(v.Addr()) && !used[v.Addr()] {
				count(v.Addr())
				vips++
			}
		}
		usable := 1<<(32-p.Bits()) - 2 // not the network's address, not its broadcast
		if 10*len(used) < 9*usable {
			continue
		}
		sev, what := Warning, "is nearly out of addresses"
		if len(used) >= usable {
			sev, what = Error, "is out of addresses"
		}
		var from []string
		if len(n.Tasks) > 0 {
			from = append(from, fmt.Sprintf("%d task endpoints (network inspect --verbose)", len(n.Tasks)))
		}
		if len(n.Endpoints) > 0 {
			from = append(from, fmt.Sprintf("%d endpoints on this node", len(n.Endpoints)))
		}
		if vips > 0 {
			from = append(from, fmt.Sprintf("%d service VIPs", vips))
		}
		if n.Gateway.IsValid() {
			from = append(from, "the gateway "+n.Gateway.String())
		}
		c.add(Finding{Code: "subnet-exhausted", Severity: sev, Netns: "docker",
			Summary: fmt.Sprintf("network %s (%s) %s: at least %d of its %d addresses are taken, and each new task, VIP or node's load-balancer endpoint needs one; tasks that get none stay in New (\"could not find an available IP\")",
				n.Name, p, what, len(used), usable),
			Evidence: fmt.Sprintf("at least %d distinct addresses of %s in use: %s (other nodes' endpoints are not all listed: the real count can only be higher)", len(used), p, strings.Join(from, ", ")),
			Confirm:  fmt.Sprintf("docker network inspect --verbose %s; docker service ps --no-trunc SERVICE (look for \"could not find an available IP\")", n.Name),
			Fix:      fmt.Sprintf("create a larger network (docker network create --driver overlay --subnet 10.x.0.0/20 …) and move services to it (docker service update --network-add/--network-rm); scale down first if you must; for ingress: docker network rm ingress, then docker network create --driver overlay --ingress --subnet … with a larger prefix than %d bits", p.Bits())})
	}
}

// vxlanPortShared: the node's own VXLAN devices (flannel, NSX, OVS,
// Cilium, a hand-made one) in the host namespace on Docker's data-path
// port. The kernel keeps one UDP socket per port and namespace and hands
// its packets to the device whose VNI they carry: a device on the same VNI
// takes an overlay's packets, and a flow-based device (external, as OVS,
// NSX and Cilium make them) cannot share the socket at all, so Docker's
// overlay fails to come up ("address already in use", moby#33416). Docker
// puts its own VTEPs inside the overlays' namespaces, never in the host's.
func (c *checker) vxlanPortShared() {
	const check = "vxlan data-path port"
	host := c.m.Lookup("host")
	if host == nil || !c.need(check, "ip addr", "host", host.Links != nil) {
		return
	}
	// Docker's VTEPs: their port and VNIs, where ip -d showed them.
	ports := map[int]bool{}
	vnis := map[int]string{}
	for _, ns := range c.m.Namespaces {
		if ns.Role != topology.RoleOverlay {
			continue
		}
		for _, l := range ns.Links {
			if l.VXLAN != nil && l.VXLAN.Port > 0 {
				ports[l.VXLAN.Port] = true
				vnis[l.VXLAN.ID] = ns.Name
			}
		}
	}
	if len(ports) == 0 {
		c.cov.skip(check+" (Docker's VTEP port)", "ip -d addr", "overlay")
		return
	}
	for _, l := range host.Links {
		if l.VXLAN == nil || !ports[l.VXLAN.Port] {
			continue
		}
		sev, why := Warning, fmt.Sprintf("it shares the socket with Docker's overlays (the kernel sorts their packets by VNI, and its VNI %d is none of theirs); if it is flow-based (external: OVS, NSX, Cilium) Docker cannot create overlays at all", l.VXLAN.ID)
		if ov, ok := vnis[l.VXLAN.ID]; ok {
			sev, why = Error, fmt.Sprintf("its VNI %d is also the overlay %s's: the packets of that overlay from other nodes reach whichever device the kernel finds first", l.VXLAN.ID, ov)
		}
		portList := slices.Sorted(maps.Keys(ports))
		c.add(Finding{Code: "vxlan-port-shared", Severity: sev, Netns: "host",
			Summary:  fmt.Sprintf("the host's own VXLAN device %s uses Docker's data-path port udp/%d: %s", l.Name, l.VXLAN.Port, why),
			Evidence: fmt.Sprintf("host: %s vxlan id %d dstport %d; Docker's VTEPs use port %v", l.Name, l.VXLAN.ID, l.VXLAN.Port, portList),
			Confirm:  fmt.Sprintf("ip -d link show type vxlan; ss -ulpn 'sport = :%d'; docker info --format '{{.Swarm.Cluster.DataPathPort}}'", l.VXLAN.Port),
			Fix:      fmt.Sprintf("move the other VXLAN user to another port, or give the swarm another data-path port (docker swarm init --data-path-port N: only when the swarm is created); remove %s if nothing needs it", l.Name)})
	}
}
