package topology

import (
	"fmt"
	"net/netip"
	"strings"
)

// HopESP is the IPsec leg of a remote backend's VXLAN on an encrypted
// overlay: the host's out policy sends the encapsulated packet through an
// ESP SA to the task's node (SPI names the SA).
const HopESP HopKind = "esp"

// BreakXfrmMissing: the overlay is encrypted, but the host has no out
// policy (or no SA) to the node a remote task is on: VXLAN leaves in the
// clear and that node drops it (Docker's INPUT rule for the encrypted
// VNI, -m policy --pol none ... -j DROP).
const BreakXfrmMissing Code = "xfrm-missing"

// espLeg is the IPsec part of the way to remote backend b, which VXLAN
// sends to b.VTEP through overlay b.Via: an esp hop when the host's out
// policy and SA to the VTEP are there; a break when Docker says the
// overlay is encrypted and they are not; unknown when it is encrypted
// and the host's xfrm state was not collected; nothing when the overlay
// is not encrypted (or not known to be, and no policy sends to the VTEP).
func (w *walker) espLeg(b Backend) []Hop {
	ovl, _, _ := strings.Cut(b.Via, "/")
	encrypted := w.encryptedOverlay(ovl)
	host := w.m.Lookup("host")
	if host == nil || host.Xfrm == nil {
		if !encrypted {
			return nil
		}
		return []Hop{{Netns: "host", Kind: HopUnknown, Code: UnknownNotCollected,
			Reason: fmt.Sprintf("overlay %s is encrypted and the host's xfrm state and policies were not collected: whether VXLAN to %s leaves through ESP cannot be checked", ovl, b.VTEP)}}
	}
	peers, _ := PairSPIs(host.Xfrm, func(a netip.Addr) bool { _, ok := host.Owns(a); return ok })
	for _, p := range peers {
		if p.Remote != b.VTEP || len(p.Policies) == 0 || len(p.Out) == 0 {
			continue
		}
		pol := host.Xfrm.Policies[p.Policies[0]]
		sa := p.Out[0]
		for _, t := range pol.Tmpls {
			if t.Dst == b.VTEP && t.SPI != 0 {
				for _, o := range p.Out {
					if o.SPI == t.SPI {
						sa = o
					}
				}
			}
		}
		return []Hop{{Netns: "host", Kind: HopESP, To: Endpoint{Addr: b.VTEP}, SPI: sa.SPI,
			Reason: fmt.Sprintf("VXLAN to %s leaves encrypted: out policy %s -> %s, ESP SA %s %s -> %s reqid %d", b.VTEP, pol.Sel.Src, pol.Sel.Dst, sa.SPI, p.Local, p.Remote, sa.Reqid)}}
	}
	if !encrypted {
		return nil
	}
	return []Hop{{Netns: "host", Kind: HopBreak, Code: BreakXfrmMissing,
		Reason: fmt.Sprintf("overlay %s is encrypted, but the host has no out policy with an ESP SA to %s (node of backend %s): VXLAN leaves in the clear and %s drops it", ovl, b.VTEP, b.IP, b.VTEP)}}
}

// encryptedOverlay: Docker says the network of overlay namespace name was
// created with --opt encrypted.
func (w *walker) encryptedOverlay(name string) bool {
	ns := w.m.Lookup(name)
	if ns == nil || ns.Docker == nil || w.m.Docker == nil {
		return false
	}
	for _, n := range w.m.Docker.Networks {
		if n.Encrypted && (n.Name == ns.Docker.Network || n.ID == ns.Docker.Network) {
			return true
		}
	}
	return false
}
