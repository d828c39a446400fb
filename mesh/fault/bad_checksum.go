package fault

import (
	"fmt"

	"github.com/meshtrace/meshtrace/mesh"
)

// planBadChecksum makes the node's uplink a broken NIC for VXLAN: the
// LAN's port towards the node computes every checksum before sending
// (TX checksum offload off, so no frame reaches the node as
// CHECKSUM_PARTIAL, "not computed yet"), and a tc program on the node's
// eth0 ingress flips a bit of the inner TCP/UDP checksum of each VXLAN
// frame (badChecksumProgram). The node's stack verifies those checksums
// and drops the packets: tasks on other nodes cannot talk to this node
// over the overlay, while everything else (ICMP, the published ports'
// traffic from the LAN) passes.
func planBadChecksum(p *planner) error {
	lan, err := p.st.NetnsPath("lan")
	if err != nil {
		return err
	}
	port := mesh.LANPort(p.node.Name)
	on, err := p.k.NIC.TxChecksum(lan, port)
	if err != nil {
		return fmt.Errorf("lan: %w", err)
	}
	if !on {
		return fmt.Errorf("lan: %s has TX checksum offload off already (already broken?)", port)
	}
	has, err := p.k.NIC.Clsact(p.host(), "eth0")
	if err != nil {
		return fmt.Errorf("%s: %w", p.node.Name, err)
	}
	if has {
		return fmt.Errorf("%s: eth0 has a clsact qdisc already (already broken?)", p.node.Name)
	}
	p.f.Detail = fmt.Sprintf("lan: %s (the LAN's port to %s) checksums in software; %s: a tc program on eth0's ingress corrupts the inner L4 checksum of VXLAN frames",
		port, p.node.Name, p.node.Name)
	p.expect(p.overlayName(), "")
	off := &OffloadOp{Dev: port, TxChecksum: false}
	if err := p.step(p.with(lan, off), p.with(lan, &OffloadOp{Dev: port, TxChecksum: true})); err != nil {
		return err
	}
	prog := &ProgramOp{Dev: "eth0", Program: ProgramBadChecksum}
	return p.step(p.with(p.host(), prog), p.with(p.host(), &ProgramOp{Dev: "eth0", Program: ProgramBadChecksum, Detach: true}))
}
