package topology

import (
	"net/netip"
	"path"
	"regexp"
	"strings"
)

// IngressSandboxEndpoint is the key under which `docker network inspect
// ingress` lists the ingress sandbox's endpoint (the sandbox itself is
// named "ingress-endpoint").
const IngressSandboxEndpoint = "ingress-sbox"

var (
	// overlayNetnsRe matches an overlay network's namespace file:
	// "<epoch>-<first 10 chars of the network id>", e.g. 1-c5h7abz82p.
	overlayNetnsRe = regexp.MustCompile(`^[0-9]+-([0-9a-z]+)$`)
	// lbNetnsRe matches a network's load-balancer namespace file:
	// "lb_<first 9 chars of the network id>".
	lbNetnsRe = regexp.MustCompile(`^lb_([0-9a-z]+)$`)
)

// AnnotateDocker attaches the model's Docker metadata to its namespaces:
//   - a container whose SandboxKey's file name is the namespace's name
//     gives Container, Service and Task;
//   - "<n>-<id>" (an overlay's namespace) and "lb_<id>" (a network's load
//     balancer) give Network, the network whose ID starts with id;
//   - the ingress sandbox, found as the namespace owning the address of the
//     ingress network's "ingress-sbox" endpoint (never by its file name:
//     Docker 1.12 named it like a container), gives Network "ingress" (the
//     ingress network's name).
//
// A name that matches several networks is left alone. It does nothing when
// the model carries no Docker metadata.
func AnnotateDocker(m *Model) {
	if m == nil || m.Docker == nil {
		return
	}
	d := m.Docker
	byKey := map[string]*DockerContainer{}
	for i := range d.Containers {
		c := &d.Containers[i]
		if c.SandboxKey != "" {
			byKey[path.Base(c.SandboxKey)] = c
		}
	}
	for _, ns := range m.Namespaces {
		if c := byKey[ns.Name]; c != nil {
			meta := netnsMeta(ns)
			meta.Container = c.Name
			meta.Service = c.Service
			meta.Task = c.Task
		}
		prefix := ""
		if s := overlayNetnsRe.FindStringSubmatch(ns.Name); s != nil {
			prefix = s[1]
		} else if s := lbNetnsRe.FindStringSubmatch(ns.Name); s != nil {
			prefix = s[1]
		}
		if prefix != "" {
			if n := d.networkByIDPrefix(prefix); n != nil {
				netnsMeta(ns).Network = n.Name
			}
		}
	}
	for _, n := range d.Networks {
		addr, ok := n.ingressSandbox()
		if !ok {
			continue
		}
		for _, ns := range m.Namespaces {
			if ns.Name == "host" {
				continue
			}
			if _, owns := ns.Owns(addr); owns {
				netnsMeta(ns).Network = n.Name
			}
		}
	}
}

func netnsMeta(ns *Namespace) *NetnsMeta {
	if ns.Docker == nil {
		ns.Docker = &NetnsMeta{}
	}
	return ns.Docker
}

// networkByIDPrefix returns the one network whose ID starts with prefix, or
// nil when none or several do.
func (d *DockerMeta) networkByIDPrefix(prefix string) *DockerNetwork {
	var found *DockerNetwork
	for i := range d.Networks {
		if strings.HasPrefix(d.Networks[i].ID, prefix) {
			if found != nil {
				return nil
			}
			found = &d.Networks[i]
		}
	}
	return found
}

// ingressSandbox is the address of the ingress sandbox's endpoint, when n
// is the ingress network and lists it.
func (n *DockerNetwork) ingressSandbox() (netip.Addr, bool) {
	if !n.Ingress && n.Name != "ingress" {
		return netip.Addr{}, false
	}
	a, ok := n.Endpoints[IngressSandboxEndpoint]
	return a, ok && a.IsValid()
}
