package inspect

import (
	"net/netip"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/meshtrace/meshtrace/topology"
)

// The engine's networks and containers as far as Meta reads them. A
// bundle's JSON is decoded into these, not into the API's types: a swarm
// node's networks.json lists every task of the swarm (`network inspect
// --verbose`), and decoding all of each object (a map of every task's Info)
// costs about five times as much. The API's objects read live are
// converted to them, so that one conversion (dockerNetwork,
// dockerContainer) serves both. Their fields have the API's JSON names; a
// field Meta does not read is not decoded, so a bundle is not refused for
// a value there that the API's type would not take.
type netMeta struct {
	Name       string                  `json:"Name"`
	ID         string                  `json:"Id"`
	Driver     string                  `json:"Driver"`
	Scope      string                  `json:"Scope"`
	Ingress    bool                    `json:"Ingress"`
	Options    map[string]string       `json:"Options"`
	IPAM       ipamMeta                `json:"IPAM"`
	Containers map[string]endpointMeta `json:"Containers"`
	Peers      []network.PeerInfo      `json:"Peers"`
	Services   map[string]serviceMeta  `json:"Services"`
}

type ipamMeta struct {
	Config []ipamConfigMeta `json:"Config"`
}

type ipamConfigMeta struct {
	Subnet  netip.Prefix `json:"Subnet"`
	Gateway netip.Addr   `json:"Gateway"`
}

type endpointMeta struct {
	Name        string       `json:"Name"`
	IPv4Address netip.Prefix `json:"IPv4Address"`
	IPv6Address netip.Prefix `json:"IPv6Address"`
}

type serviceMeta struct {
	Tasks []taskMeta `json:"Tasks"`
}

type taskMeta struct {
	Name       string     `json:"Name"`
	EndpointIP netip.Addr `json:"EndpointIP"`
	Info       struct {
		HostIP string `json:"Host IP"`
	} `json:"Info"`
}

type ctrMeta struct {
	ID              string       `json:"Id"`
	Name            string       `json:"Name"`
	Config          *ctrConfig   `json:"Config"`
	NetworkSettings *ctrNetworks `json:"NetworkSettings"`
}

type ctrConfig struct {
	Labels map[string]string `json:"Labels"`
}

type ctrNetworks struct {
	SandboxKey string                      `json:"SandboxKey"`
	Networks   map[string]*ctrEndpointMeta `json:"Networks"`
}

type ctrEndpointMeta struct {
	IPAddress netip.Addr `json:"IPAddress"`
}

func netMetaOf(n network.Inspect) netMeta {
	out := netMeta{Name: n.Name, ID: n.ID, Driver: n.Driver, Scope: n.Scope, Ingress: n.Ingress, Options: n.Options, Peers: n.Peers}
	for _, c := range n.IPAM.Config {
		out.IPAM.Config = append(out.IPAM.Config, ipamConfigMeta{Subnet: c.Subnet, Gateway: c.Gateway})
	}
	if n.Containers != nil {
		out.Containers = make(map[string]endpointMeta, len(n.Containers))
		for k, ep := range n.Containers {
			out.Containers[k] = endpointMeta{Name: ep.Name, IPv4Address: ep.IPv4Address, IPv6Address: ep.IPv6Address}
		}
	}
	if n.Services != nil {
		out.Services = make(map[string]serviceMeta, len(n.Services))
		for name, s := range n.Services {
			var sm serviceMeta
			for _, t := range s.Tasks {
				tm := taskMeta{Name: t.Name, EndpointIP: t.EndpointIP}
				tm.Info.HostIP = t.Info["Host IP"]
				sm.Tasks = append(sm.Tasks, tm)
			}
			out.Services[name] = sm
		}
	}
	return out
}

func ctrMetaOf(c container.InspectResponse) ctrMeta {
	out := ctrMeta{ID: c.ID, Name: c.Name}
	if c.Config != nil {
		out.Config = &ctrConfig{Labels: c.Config.Labels}
	}
	if ns := c.NetworkSettings; ns != nil {
		out.NetworkSettings = &ctrNetworks{SandboxKey: ns.SandboxKey}
		if ns.Networks != nil {
			out.NetworkSettings.Networks = make(map[string]*ctrEndpointMeta, len(ns.Networks))
			for name, ep := range ns.Networks {
				var em *ctrEndpointMeta
				if ep != nil {
					em = &ctrEndpointMeta{IPAddress: ep.IPAddress}
				}
				out.NetworkSettings.Networks[name] = em
			}
		}
	}
	return out
}

// dockerMetaFromJSON decodes the networks, containers and services
// documents (as dockerDataFromJSON, into what Meta reads) into the model's
// Docker metadata; nil when none holds anything.
func dockerMetaFromJSON(nets, ctrs, svcs jsonInput) (*topology.DockerMeta, error) {
	var (
		n []netMeta
		c []ctrMeta
		s []swarm.Service
	)
	if found, err := decodeDocs([3]jsonInput{nets, ctrs, svcs}, [3]any{&n, &c, &s}); !found || err != nil {
		return nil, err
	}
	return meta(n, c, s), nil
}
