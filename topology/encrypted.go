package topology

import "fmt"

// DockerXfrmReqid is the reqid (and the mark, 0xd0c4e3) of the IPsec SAs
// and policies Docker programs for encrypted overlays (moby
// libnetwork/drivers/overlay/encryption.go: r = 0xd0c4e3, mark).
const DockerXfrmReqid = 0xd0c4e3

// EncryptedOverlay is an overlay network created with --opt encrypted and
// the other nodes it must have IPsec with.
type EncryptedOverlay struct {
	Name  string
	Peers []PeerNode
}

// EncryptedOverlays are the node's encrypted overlays (Docker's metadata
// says which), each with its peers: the network's Peers, the nodes its
// tasks run on and the VTEPs its overlay namespace's FDB sends to, never
// the host's own addresses.
func EncryptedOverlays(m *Model) []EncryptedOverlay {
	if m.Docker == nil {
		return nil
	}
	var out []EncryptedOverlay
	for _, n := range m.Docker.Networks {
		if !n.Encrypted {
			continue
		}
		ps := newPeerSet(m)
		add := ps.add
		for _, p := range n.Peers {
			add(p.IP, fmt.Sprintf("Docker: peer %s of network %s", p.Name, n.Name))
		}
		for _, t := range n.Tasks {
			add(t.Node, fmt.Sprintf("Docker: task %s of network %s runs there", t.Name, n.Name))
		}
		for _, ns := range m.Namespaces {
			if ns.Role == RoleOverlay && ns.Docker != nil && ns.Docker.Network == n.Name {
				for _, f := range ns.FDB {
					add(f.Dst, fmt.Sprintf("the FDB of overlay %s sends %s there", ns.Name, f.MAC))
				}
			}
		}
		out = append(out, EncryptedOverlay{Name: n.Name, Peers: ps.out})
	}
	return out
}
