package mesh

// System is everything the mesh needs from the kernel and the process
// table. The Linux implementation talks netlink (per-netns handles),
// iptables-restore and IPVS; tests of the orchestration use a fake.
type System interface {
	// HasIPVS says whether the kernel offers IPVS (the generic netlink
	// family "IPVS"), and how that was established.
	HasIPVS() (bool, string)
	// CreateNetns makes a namespace pinned at path.
	CreateNetns(path string) error
	// Devices brings lo up and creates ns's bridges and its VXLAN device.
	Devices(ns *NetnsSpec) error
	// Veths creates ns's veth pairs, the peers directly in their
	// namespace, enslaved to their bridge.
	Veths(ns *NetnsSpec) error
	// Configure adds ns's addresses, routes, neighbours and FDB entries
	// and writes its sysctls.
	Configure(ns *NetnsSpec) error
	// Firewall loads iptables-restore input into the namespace at path.
	Firewall(path, rules string) error
	// IPVS programs firewall-mark services in the namespace at path.
	IPVS(path string, svcs []IPVSSpec) error
	// StartAgent starts the mesh's agent detached and returns its pid
	// once it reported ready.
	StartAgent(a AgentSpec) (pid int, err error)
	// Remove tears down everything of mesh name under dir: the agent (by
	// pid file and by scanning processes), every namespace mount, the
	// directory. It works on a half-built mesh and is idempotent.
	Remove(dir, name string) (Removed, error)
}

// AgentSpec says how to start a mesh's agent.
type AgentSpec struct {
	Binary string // the meshtrace binary
	Name   string
	RunDir string
	Dir    string
}

// Removed is what Remove found and removed.
type Removed struct {
	Agents     []int    // pids killed
	Namespaces int      // namespace mounts removed
	Dir        bool     // the mesh directory existed
	Lingering  []string // processes still inside a removed namespace
}
