package swarm

import "net/netip"

// ManifestFile is the file `meshtrace swarm collect` writes beside the node
// bundles (DIR/swarm.json): every node the manager listed, collected or
// not, so that a check of DIR names the nodes that did not answer.
const ManifestFile = "swarm.json"

// Manifest is DIR/swarm.json.
type Manifest struct {
	// Service is the global job that collected the bundles.
	Service string         `json:"service,omitempty"`
	Nodes   []ManifestNode `json:"nodes"`
}

// ManifestNode is one node of the swarm as the manager listed it.
type ManifestNode struct {
	// Name is the node's hostname, and its bundle's directory (DIR/Name).
	Name string     `json:"name"`
	ID   string     `json:"id"`
	Addr netip.Addr `json:"addr,omitzero"`
	Role string     `json:"role,omitempty"`
	// Collected is true when DIR/Name holds its bundle; Reason says why
	// not otherwise.
	Collected bool   `json:"collected"`
	Reason    string `json:"reason,omitempty"`
}
