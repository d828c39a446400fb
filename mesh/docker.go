package mesh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/topology"
)

// Swarm's container labels, as dockerd sets them on a task's container.
const (
	labelServiceName = "com.docker.swarm.service.name"
	labelTaskName    = "com.docker.swarm.task.name"
	labelTaskID      = "com.docker.swarm.task.id"
	labelNodeID      = "com.docker.swarm.node.id"
)

// Engine is what the Docker engine's API answers on one node of the mesh,
// in the engine's own types: `docker network inspect --verbose` of the
// ingress network (this node's endpoints, every node's tasks with the
// node they run on, the network's peers) and of docker_gwbridge (the
// ingress sandbox's leg; the tasks' legs are not in the mesh's state), `docker
// inspect` of the node's task containers (SandboxKey = their netns file)
// and `docker service inspect` (the node is a manager). It has the
// methods of inspect.DockerReader, so the mesh's metadata goes through
// the reader and the bundle writer real Docker's goes through.
type Engine struct {
	st   *State
	node string
}

// Engine returns node's engine.
func (st *State) Engine(node string) *Engine { return &Engine{st: st, node: node} }

// nodeIP is the advertise address of the mesh's node called name.
func (st *State) nodeIP(name string) netip.Addr {
	for _, n := range st.Nodes {
		if n.Name == name {
			return n.IP
		}
	}
	return netip.Addr{}
}

// Networks is `docker network inspect --verbose ingress docker_gwbridge`.
func (e *Engine) Networks(context.Context) ([]network.Inspect, error) {
	st := e.st
	if st.nodeIP(e.node) == (netip.Addr{}) {
		return nil, fmt.Errorf("mesh %s has no node %s", st.Name, e.node)
	}
	ingress := network.Inspect{
		Network: network.Network{Name: "ingress", ID: st.OverlayID, Scope: "swarm", Driver: "overlay", EnableIPv4: true, Ingress: true,
			IPAM:    network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: addrplan.IngressSubnet, Gateway: addrplan.IngressGW}}},
			Options: map[string]string{"com.docker.network.driver.overlay.vxlanid_list": fmt.Sprint(addrplan.IngressVNI)},
			Labels:  map[string]string{}},
		Containers: map[string]network.EndpointResource{},
		Services:   map[string]network.ServiceInfo{},
	}
	gwbridge := network.Inspect{
		Network: network.Network{Name: "docker_gwbridge", ID: hexID(st.Name, e.node, "docker_gwbridge"), Scope: "local", Driver: "bridge", EnableIPv4: true,
			IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: addrplan.GWSubnet, Gateway: addrplan.GWBridgeIP}}},
			Options: map[string]string{"com.docker.network.bridge.name": addrplan.GWBridge, "com.docker.network.bridge.enable_icc": "false",
				"com.docker.network.bridge.enable_ip_masquerade": "true"},
			Labels: map[string]string{}},
		Containers: map[string]network.EndpointResource{},
	}
	// Every node takes part in the ingress network (each has its ingress
	// sandbox): its gossip peers.
	for _, n := range st.Nodes {
		ingress.Peers = append(ingress.Peers, network.PeerInfo{Name: nodeID(st, n.Name), IP: n.IP})
		if n.Name != e.node {
			continue
		}
		ingress.Containers[topology.IngressSandboxEndpoint] = engineEndpoint("ingress-endpoint", n.SandboxIP, addrplan.IngressSubnet, st.Name, n.Name, "ingress-sbox")
		gwbridge.Containers[topology.IngressSandboxEndpoint] = engineEndpoint("gateway_ingress-sbox", addrplan.SandboxGWIP, addrplan.GWSubnet, st.Name, n.Name, "gateway_ingress-sbox")
	}
	for _, s := range st.Services {
		info := network.ServiceInfo{VIP: s.VIP, LocalLBIndex: int(s.FWMark)}
		if !s.DNSRR() {
			info.Ports = []string{fmt.Sprintf("Target: %d, Publish: %d", s.Target, s.Published)}
		}
		for _, t := range s.Tasks {
			ep := engineEndpoint(containerName(st, t), t.IP, addrplan.IngressSubnet, st.Name, t.Name, "ingress")
			info.Tasks = append(info.Tasks, network.Task{Name: ep.Name, EndpointID: ep.EndpointID, EndpointIP: t.IP,
				Info: map[string]string{"Host IP": st.nodeIP(t.Node).String()}})
			if t.Node != e.node {
				continue
			}
			ingress.Containers[containerID(st, t)] = ep
		}
		ingress.Services[s.Name] = info
	}
	return []network.Inspect{gwbridge, ingress}, nil
}

// Containers is `docker inspect` of the node's task containers.
func (e *Engine) Containers(context.Context) ([]container.InspectResponse, error) {
	st := e.st
	var out []container.InspectResponse
	for _, s := range st.Services {
		for _, t := range s.Tasks {
			if t.Node != e.node {
				continue
			}
			tid := swarmID(st.Name, "task", t.Name)
			ep := engineEndpoint(containerName(st, t), t.IP, addrplan.IngressSubnet, st.Name, t.Name, "ingress")
			out = append(out, container.InspectResponse{
				ID: containerID(st, t), Name: "/" + containerName(st, t), Path: "meshtrace", Args: []string{"mesh", "agent"},
				State: &container.State{Status: "running", Running: true},
				Config: &container.Config{Hostname: filepath.Base(t.Netns), Labels: map[string]string{
					labelServiceName: s.Name, labelTaskName: containerName(st, t), labelTaskID: tid, labelNodeID: nodeID(st, t.Node)}},
				NetworkSettings: &container.NetworkSettings{SandboxID: hexID(st.Name, "sandbox", t.Name), SandboxKey: t.Netns,
					Networks: map[string]*network.EndpointSettings{"ingress": {
						NetworkID: st.OverlayID, EndpointID: ep.EndpointID, IPAddress: t.IP, IPPrefixLen: addrplan.IngressSubnet.Bits(), MacAddress: ep.MacAddress,
						Aliases: []string{filepath.Base(t.Netns)}}}},
			})
		}
	}
	return out, nil
}

// Services is `docker service inspect` of every service.
func (e *Engine) Services(context.Context) ([]swarm.Service, error) {
	var out []swarm.Service
	for _, s := range e.st.Services {
		spec := &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP}
		ep := swarm.Endpoint{}
		if s.DNSRR() {
			spec.Mode = swarm.ResolutionModeDNSRR
		} else {
			spec.Ports = []swarm.PortConfig{{Protocol: network.IPProtocol(s.Proto), TargetPort: uint32(s.Target), PublishedPort: uint32(s.Published), PublishMode: swarm.PortConfigPublishModeIngress}}
			ep.Ports = spec.Ports
		}
		if s.VIP.IsValid() {
			ep.VirtualIPs = []swarm.EndpointVirtualIP{{NetworkID: e.st.OverlayID, Addr: netip.PrefixFrom(s.VIP, addrplan.IngressSubnet.Bits())}}
		}
		ep.Spec = *spec
		replicas := uint64(len(s.Tasks))
		out = append(out, swarm.Service{ID: swarmID(e.st.Name, "service", s.Name),
			Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: s.Name, Labels: map[string]string{}},
				Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}}, EndpointSpec: spec},
			Endpoint: ep})
	}
	return out, nil
}

// engineEndpoint is a network endpoint of name at addr: the MAC Docker derives
// from the address, a stable endpoint id.
func engineEndpoint(name string, addr netip.Addr, subnet netip.Prefix, parts ...string) network.EndpointResource {
	mac := addrplan.HWAddr(addr)
	return network.EndpointResource{Name: name, EndpointID: hexID(append(parts, "endpoint")...),
		MacAddress: network.HardwareAddr(net.HardwareAddr(mac[:])), IPv4Address: netip.PrefixFrom(addr, subnet.Bits())}
}

// containerName is a task container's name, "web.1.<task id>".
func containerName(st *State, t TaskState) string {
	return t.Name + "." + swarmID(st.Name, "task", t.Name)
}

func containerID(st *State, t TaskState) string { return hexID(st.Name, "container", t.Name) }

// nodeID is a node's id as network peers name it (12 hex digits).
func nodeID(st *State, node string) string { return hexID(st.Name, "node", node)[:12] }

// hexID is a 64-hex id (a container's, an endpoint's), stable for parts.
func hexID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])
}

// swarmID is a swarm object's id (25 base-36 characters), stable for
// parts.
func swarmID(parts ...string) string {
	id := ""
	for i := 0; len(id) < 25; i++ {
		id += addrplan.NetworkID(append(parts, fmt.Sprint(i))...)
	}
	return id[:25]
}
