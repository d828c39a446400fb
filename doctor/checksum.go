package doctor

import (
	"fmt"

	"github.com/meshtrace/meshtrace/topology"
)

// badChecksum: packets that reach a hop with a wrong TCP/UDP checksum
// though the kernel marks them complete were damaged between the hop
// before and this one: a NIC's broken checksum offload on VXLAN (vmxnet3
// and others, moby#41775), which the receiver drops (ping works, TCP
// stalls). It needs what a capture saw at each hop (Options.Checksums,
// from trace during `doctor --probe`); a frame whose checksum is merely not
// computed yet is never blamed (topology.BadChecksums).
func (c *checker) badChecksum() {
	if c.o.Checksums == nil {
		return
	}
	c.cov.ran("checksums")
	for _, b := range topology.BadChecksums(c.o.Checksums) {
		where := "where they were first seen: they arrived so"
		if b.After != "" {
			where = "they were right at " + b.After + ", the hop before"
		}
		c.add(Finding{Code: "bad-checksum", Severity: Error, Netns: b.Netns,
			Summary:  fmt.Sprintf("%d %s packet(s) reach %s with a wrong checksum although the kernel marks them complete: the receiver drops them (ping works, TCP stalls)", b.Packets, b.Proto, b.Hop),
			Evidence: fmt.Sprintf("at %s the %s checksum is wrong and the frame is not CHECKSUM_PARTIAL (no TP_STATUS_CSUMNOTREADY); %s", b.Hop, b.Proto, where),
			Confirm:  c.in(b.Netns, "tcpdump -vv -ni any '"+b.Proto+"'") + " (\"cksum … incorrect\"); nstat -az TcpInCsumErrors UdpInCsumErrors; ethtool -k UPLINK | grep checksum",
			Fix:      "turn off the TX checksum offload that damages VXLAN on the sending node's NIC (ethtool -K UPLINK tx-checksum-ip-generic off, or tx off; vmxnet3: see moby#41775) and make it persistent"})
	}
}
