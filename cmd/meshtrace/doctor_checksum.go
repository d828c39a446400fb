package main

import (
	"github.com/meshtrace/meshtrace/doctor"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace"
	"github.com/meshtrace/meshtrace/trace/capture"
)

// checksumPoints are where doctor --probe watches the probes' checksums,
// in the order packets from another node cross them: the host's uplink
// (the link of its advertise address: VXLAN frames as they come in) and
// each overlay's VXLAN device (the same packets decapsulated). A packet
// right at the first and wrong at the second went bad on the way in.
func checksumPoints(m *topology.Model) []trace.Point {
	var pts []trace.Point
	if host := m.Lookup("host"); host != nil {
		if adv := topology.AdvertiseAddress(m); adv.Addr.IsValid() {
			if l, ok := host.Owns(adv.Addr); ok {
				pts = append(pts, trace.Point{Netns: host.Name, Ifname: l.Name, Role: "uplink", Path: host.Path})
			}
		}
	}
	for _, ns := range m.Namespaces {
		if ns.Role != topology.RoleOverlay {
			continue
		}
		for _, l := range ns.Links {
			if l.VXLAN != nil {
				pts = append(pts, trace.Point{Netns: ns.Name, Ifname: l.Name, Role: "vxlan", Path: ns.Path})
			}
		}
	}
	return pts
}

// watchChecksums starts the checksum capture of doctor --probe and hands
// it to o; the returned stop must run when doctor is done. A capture that
// cannot start (no root, no AF_PACKET) leaves the check out: doctor's
// coverage line then does not list it.
func watchChecksums(m *topology.Model, src *sourceFlags, o *doctor.Options) (stop func()) {
	pts := checksumPoints(m)
	if len(pts) == 0 || src.from != "" {
		return func() {}
	}
	w, err := capture.WatchChecksums(pts, src.modules())
	if err != nil {
		m.Notes = append(m.Notes, "checksums not captured: "+err.Error())
		return func() {}
	}
	o.CaptureChecksums = w.Stop
	return func() { w.Stop() }
}
