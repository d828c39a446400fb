package mesh

import (
	"net/netip"
	"path/filepath"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/topology"
)

// DockerMeta is what `docker inspect` would say about one node of the mesh:
// the services with their published ports and VIPs, the node's own task
// containers (SandboxKey = their netns file), and the ingress network with
// every task's endpoint, local or remote, the way `docker network inspect
// --verbose` lists a swarm network's tasks.
func (st *State) DockerMeta(node string) *topology.DockerMeta {
	d := &topology.DockerMeta{}
	ingress := topology.DockerNetwork{ID: st.OverlayID, Name: "ingress", Driver: "overlay", Scope: "swarm", Ingress: true,
		Subnet: addrplan.IngressSubnet, Endpoints: map[string]netip.Addr{}}
	for _, n := range st.Nodes {
		if n.Name == node {
			ingress.Endpoints[topology.IngressSandboxEndpoint] = n.SandboxIP
		}
	}
	for _, s := range st.Services {
		ds := topology.DockerService{ID: s.Name, Name: s.Name, EndpointMode: EndpointVIP}
		if s.DNSRR() {
			ds.EndpointMode = EndpointDNSRR
		} else {
			ds.Ports = []topology.DockerPort{{Proto: s.Proto, Published: s.Published, Target: s.Target, Mode: "ingress"}}
		}
		if s.VIP.IsValid() {
			ds.VIPs = map[string]netip.Prefix{st.OverlayID: netip.PrefixFrom(s.VIP, 32)}
		}
		d.Services = append(d.Services, ds)
		for _, t := range s.Tasks {
			ingress.Endpoints[t.Name] = t.IP
			if t.Node != node {
				continue
			}
			id := filepath.Base(t.Netns)
			d.Containers = append(d.Containers, topology.DockerContainer{ID: id, Name: t.Name, SandboxKey: t.Netns,
				Service: s.Name, Task: t.Name, Networks: map[string]netip.Addr{"ingress": t.IP}})
		}
	}
	d.Networks = []topology.DockerNetwork{ingress}
	return d
}
