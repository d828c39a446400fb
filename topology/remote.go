package topology

import (
	"net/netip"
	"sort"
)

// remoteIndex is what the model knows of addresses on other nodes, indexed
// once per walk: a path balanced to a hundred remote tasks asks it a
// hundred times, and the overlays' FDBs hold an entry per remote endpoint.
type remoteIndex struct {
	// neigh is, per address, the first overlay namespace (model order)
	// with a neighbour entry for it, and that entry.
	neigh map[netip.Addr]neighIn
	// fdb is, per overlay namespace and MAC, its first FDB entry with a
	// destination (the remote VTEP).
	fdb map[fdbKey]*FDB
	// task is, per address, the first task `docker network inspect
	// --verbose` lists there; endpoint the (least, by name) bare endpoint
	// of a network there, but the ingress sandbox's.
	task     map[netip.Addr]*DockerTask
	endpoint map[netip.Addr]string
	// docker holds every address Docker has a container, endpoint or task
	// at.
	docker map[netip.Addr]bool
	// everyTask: some swarm network lists every node's tasks (`docker
	// network inspect --verbose`), so an address no task has is known
	// to be no task's. Without it a remote task looks the same.
	everyTask bool
}

type neighIn struct {
	ns *Namespace
	n  *Neigh
}

type fdbKey struct {
	ns  *Namespace
	mac MAC
}

func newRemoteIndex(m *Model) *remoteIndex {
	x := &remoteIndex{neigh: map[netip.Addr]neighIn{}, fdb: map[fdbKey]*FDB{}, task: map[netip.Addr]*DockerTask{},
		endpoint: map[netip.Addr]string{}, docker: map[netip.Addr]bool{}}
	for _, ns := range m.Namespaces {
		if ns.Role != RoleOverlay {
			continue
		}
		for i := range ns.Neighbours {
			n := &ns.Neighbours[i]
			if _, ok := x.neigh[n.IP]; !ok {
				x.neigh[n.IP] = neighIn{ns, n}
			}
		}
		for i := range ns.FDB {
			f := &ns.FDB[i]
			k := fdbKey{ns, f.MAC}
			if _, ok := x.fdb[k]; !ok && f.Dst.IsValid() {
				x.fdb[k] = f
			}
		}
	}
	d := m.Docker
	if d == nil {
		return x
	}
	for _, ct := range d.Containers {
		for _, a := range ct.Networks {
			x.docker[a] = true
		}
	}
	for i := range d.Networks {
		n := &d.Networks[i]
		names := make([]string, 0, len(n.Endpoints))
		for name, a := range n.Endpoints {
			x.docker[a] = true
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			a := n.Endpoints[name]
			if _, ok := x.endpoint[a]; !ok && name != IngressSandboxEndpoint {
				x.endpoint[a] = name
			}
		}
		if n.Tasks != nil {
			x.everyTask = true
		}
		for j := range n.Tasks {
			t := &n.Tasks[j]
			x.docker[t.IP] = true
			if _, ok := x.task[t.IP]; !ok {
				x.task[t.IP] = t
			}
		}
	}
	return x
}

// remote is the walk's index, built at its first remote backend.
func (w *walker) remote() *remoteIndex {
	if w.idx == nil {
		w.idx = newRemoteIndex(w.m)
	}
	return w.idx
}

// remoteTask names the Docker task with address a on a swarm network and
// the node it runs on, as `docker network inspect --verbose` lists remote
// tasks; a bare endpoint of the network gives only a name.
func (w *walker) remoteTask(a netip.Addr) (task, service string, node netip.Addr) {
	x := w.remote()
	if t := x.task[a]; t != nil {
		return t.Name, t.Service, t.Node
	}
	return x.endpoint[a], "", netip.Addr{}
}

// vtepFor finds, in the overlay namespaces, the VXLAN device and the remote
// VTEP that carry traffic to a: the neighbour entry gives a's MAC, the FDB
// entry for that MAC gives the VTEP.
func (w *walker) vtepFor(a netip.Addr) (via string, vtep netip.Addr) {
	x := w.remote()
	n, ok := x.neigh[a]
	if !ok {
		return "", netip.Addr{}
	}
	if f := x.fdb[fdbKey{n.ns, n.n.MAC}]; f != nil {
		return n.ns.Name + "/" + f.Dev, f.Dst
	}
	return n.ns.Name + "/" + n.n.Dev, netip.Addr{}
}

// overlayOf is the overlay namespace a remote address is reached through:
// the one with a neighbour entry for it, else the one whose bridge's subnet
// holds it; nil when no overlay read is.
func (w *walker) overlayOf(a netip.Addr) *Namespace {
	if n, ok := w.remote().neigh[a]; ok {
		return n.ns
	}
	for _, ns := range w.m.Namespaces {
		if ns.Role != RoleOverlay {
			continue
		}
		for _, l := range ns.Links {
			for _, p := range l.Addrs {
				if l.Kind == "bridge" && p.Contains(a) {
					return ns
				}
			}
		}
	}
	return nil
}

// neighbourIn is ns's neighbour entry for a, nil when it has none.
func (w *walker) neighbourIn(ns *Namespace, a netip.Addr) *Neigh {
	if n, ok := w.remote().neigh[a]; ok && n.ns == ns {
		return n.n
	}
	return nil
}

// dockerKnows: Docker has a container or task endpoint at a (`docker
// network inspect --verbose` lists remote tasks too).
func (w *walker) dockerKnows(a netip.Addr) bool { return w.remote().docker[a] }
