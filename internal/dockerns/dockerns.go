// Package dockerns builds a Docker-shaped Swarm node out of real network
// namespaces, for tests and benchmarks: a namespace playing the host (with
// docker_gwbridge), a directory of namespace files laid out like
// /run/docker/netns (ingress_sbox, the ingress overlay's 1-<id>, one
// 12-hex-char namespace per task), veths, bridges, a VXLAN VTEP and the
// iptables rules dockerd writes (from internal/dockerrules). Nothing is
// created in the caller's own namespace: every link lives in a namespace
// of the world, so tearing the namespaces down removes everything.
//
// World.HostPath and World.Dir are exactly what inspect.Options.HostNetns
// and NetnsDirs expect.
package dockerns

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/meshtrace/meshtrace/internal/addrplan"
	"github.com/meshtrace/meshtrace/internal/dockerrules"
)

// Options says what to build.
type Options struct {
	// Prefix makes the world's directory unique (testutil.Prefix()).
	Prefix string
	// Tasks is the number of task namespaces (default 2, at most 240).
	Tasks int
	// Ports are the published ports of the one service (default tcp
	// 8080->80) when Services is empty.
	Ports []dockerrules.Port
	// Services are the published services, each with its own ports,
	// firewall mark, ingress VIP and replicas (task namespaces). Empty:
	// one service "web" with Ports and Tasks replicas.
	Services []ServiceSpec
	// Variant picks Modern or Docker112 (hex-named sandbox holding the
	// REDIRECT).
	Variant dockerrules.Variant
	// EastWest adds a user overlay (1-<id>, 10.0.1.0/24) with a leg (eth2)
	// in every task and the service VIP mark in the first task's mangle
	// OUTPUT.
	EastWest bool
	// Emulate renders the sandbox's load balancing as iptables rules
	// (dockerrules.SandboxOpts.Emulate); without it the sandbox has only
	// the marks (this kernel cannot load `-m ipvs`).
	Emulate bool
	// Listen opens a TCP listener on each target port in every task, like
	// the container's server (closed by Close).
	Listen bool
	// Workers bounds the parallel per-task setup (default 4).
	Workers int
}

// ServiceSpec is one published service to build.
type ServiceSpec struct {
	Name     string
	Ports    []dockerrules.Port
	Replicas int
}

// The world's addresses are internal/addrplan's (the shapes of
// swarm-mesh.md): the node is a mesh's node0 on the LAN, the remote VTEP
// its node1.
var (
	NodeIP = netip.PrefixFrom(addrplan.NodeIP(0), addrplan.LANSubnet.Bits())
	// RemoteVTEP is the other node the overlay knows a peer behind
	// (static FDB + neighbour entry, as the overlay driver programs them).
	RemoteVTEP = addrplan.NodeIP(1)
	RemoteIP   = addrplan.Nth(addrplan.IngressSubnet, 254)
	RemoteMAC  = addrplan.MAC(RemoteIP)
	// UserSubnet is the east-west user overlay's (EastWest).
	UserSubnet = netip.MustParsePrefix("10.0.1.0/24")
)

// The east-west overlay's VXLAN id and service mark.
const (
	UserVNI      = addrplan.IngressVNI + 1
	EastWestMark = addrplan.FirstFWMark + 1
)

// World is a built node. Expect lists every link the builder made, so a
// test can compare what it reads with what was built.
type World struct {
	Prefix   string
	Base     string // temp dir holding HostPath and Dir
	HostPath string // the "host" namespace file
	Dir      string // the netns directory (like /run/docker/netns)

	Sandbox     string // netns name of the ingress sandbox
	Overlay     string // netns name of the ingress overlay
	UserOverlay string // "" unless EastWest
	Tasks       []Task
	Services    []dockerrules.Service // the published services (ingress VIP, mark, ports, backends)
	EastWestSvc *dockerrules.Service  // the east-west VIP service (of the first service), when EastWest

	// Expect is every link built, per netns name ("host" for the host).
	Expect map[string][]LinkSpec
	// Rules is the iptables-restore text loaded per netns name.
	Rules map[string][]string
	// Sysctls are the values the builder set, per netns name.
	Sysctls map[string]map[string]string

	nss     []*netnsFile
	closers []io.Closer
}

// Task is one task namespace.
type Task struct {
	Name      string
	Service   string
	Ports     []dockerrules.Port
	IngressIP netip.Addr
	GwIP      netip.Addr
	UserIP    netip.Addr // valid when EastWest
}

// LinkSpec is a link as built.
type LinkSpec struct {
	Name   string
	Kind   string // veth, bridge, vxlan, dummy, loopback
	MTU    int
	MAC    string
	Addrs  []netip.Prefix
	Master string
	// PeerNetns/PeerIfname name the other end of a veth.
	PeerNetns  string
	PeerIfname string
	VNI        int
	Port       int
}

// Names returns every namespace name of the world in creation order,
// "host" first.
func (w *World) Names() []string {
	out := make([]string, 0, len(w.nss))
	for _, n := range w.nss {
		out = append(out, n.name)
	}
	return out
}

func (o *Options) defaults() error {
	if o.Prefix == "" {
		return fmt.Errorf("dockerns: options need a prefix")
	}
	if len(o.Services) == 0 {
		if o.Tasks == 0 {
			o.Tasks = 2
		}
		if len(o.Ports) == 0 {
			o.Ports = []dockerrules.Port{{Proto: "tcp", Published: 8080, Target: 80}}
		}
		o.Services = []ServiceSpec{{Name: "web", Ports: o.Ports, Replicas: o.Tasks}}
	}
	total := 0
	published := map[string]string{}
	for _, s := range o.Services {
		if s.Replicas < 1 || len(s.Ports) == 0 {
			return fmt.Errorf("dockerns: service %q: want at least one replica and one port", s.Name)
		}
		total += s.Replicas
		for _, p := range s.Ports {
			k := fmt.Sprintf("%s/%d", p.Proto, p.Published)
			if other, ok := published[k]; ok {
				return fmt.Errorf("dockerns: %s published by both %q and %q", k, other, s.Name)
			}
			published[k] = s.Name
		}
	}
	if total+len(o.Services) > 240 {
		return fmt.Errorf("dockerns: %d tasks and %d services: want at most 240 addresses (one /24 ingress network)", total, len(o.Services))
	}
	o.Tasks = total
	if o.Workers <= 0 {
		o.Workers = 4
	}
	return nil
}

// plan fills the names and addresses of a world before anything is built.
func plan(o Options) *World {
	w := &World{
		Prefix:  o.Prefix,
		Overlay: "1-" + addrplan.NetworkID(o.Prefix, "ingress"),
		Expect:  map[string][]LinkSpec{},
		Rules:   map[string][]string{},
		Sysctls: map[string]map[string]string{},
	}
	w.Sandbox = addrplan.SandboxName
	if o.Variant == dockerrules.Docker112 {
		w.Sandbox = addrplan.ContainerID(o.Prefix, "sandbox")
	}
	if o.EastWest {
		w.UserOverlay = "1-" + addrplan.NetworkID(o.Prefix, "user")
	}
	ing := addrplan.Ingress{Nodes: 1, Services: len(o.Services)}
	for si, spec := range o.Services {
		svc := dockerrules.Service{Name: spec.Name, FWMark: addrplan.FirstFWMark + uint32(si), VIP: ing.VIP(si), Ports: spec.Ports}
		for range spec.Replicas {
			i := len(w.Tasks)
			t := Task{
				Name:      addrplan.ContainerID(o.Prefix, "task", strconv.Itoa(i)),
				Service:   spec.Name,
				Ports:     spec.Ports,
				IngressIP: ing.Task(i),
				GwIP:      addrplan.TaskGWIP(i),
			}
			if o.EastWest {
				t.UserIP = addrplan.Nth(UserSubnet, 4+i)
			}
			w.Tasks = append(w.Tasks, t)
			svc.Backends = append(svc.Backends, t.IngressIP)
		}
		w.Services = append(w.Services, svc)
	}
	if o.EastWest {
		s0 := w.Services[0]
		w.EastWestSvc = &dockerrules.Service{Name: s0.Name, FWMark: EastWestMark, VIP: addrplan.Nth(UserSubnet, 2), Ports: s0.Ports}
		for _, t := range w.Tasks {
			if t.Service == s0.Name {
				w.EastWestSvc.Backends = append(w.EastWestSvc.Backends, t.UserIP)
			}
		}
	}
	return w
}
