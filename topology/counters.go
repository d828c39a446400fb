package topology

// Counters are one namespace's kernel counters at one moment, beside the
// counters the model keeps elsewhere (every iptables rule's and chain
// policy's in Firewall and OtherFirewall, every IPVS service's and
// destination's in IPVS, every SA's in Xfrm): taken before and after a
// trace, DiffCounters says which moved. Reading them changes nothing and
// needs no setup; every counter is the namespace's own (/proc/net is per
// network namespace).
//
// ICMP: the kernel counts the ICMP messages it sends by type only
// (icmp_out_count in net/ipv4/icmp.c: IcmpMsg OutTypeN, and the Icmp
// OutDestUnreachs, OutTimeExcds … columns, which are those per-type counts
// again), never by code: "fragmentation needed" (type 3 code 4), "port
// unreachable" (3/3) and "host unreachable" (3/1) all land in
// IcmpMsgOutType3 = IcmpOutDestUnreachs. What tells them apart is the
// counter that moved with it: IpFragFails (a DF packet too big to forward,
// ip_forward/ip_fragment), UdpNoPorts (no socket, __udp4_lib_rcv),
// IpExtInNoRoutes (no route while forwarding, ip_error in net/ipv4/route.c,
// which sends net unreachable; host unreachable there counts nothing of
// its own), or a REJECT rule's own counter.
type Counters struct {
	// SNMP are /proc/net/snmp and /proc/net/netstat, every field, named
	// as nstat names them: the header's prefix then the field, e.g.
	// IpOutNoRoutes, IpFragFails, UdpNoPorts, UdpInErrors,
	// UdpInCsumErrors, TcpInCsumErrors, IcmpOutDestUnreachs,
	// IcmpMsgOutType3, TcpExtListenDrops, TcpExtIPReversePathFilter,
	// IpExtInNoRoutes (the MIB's IpInNoRoutes: Linux counts it in
	// /proc/net/netstat's IpExt line, IPSTATS_MIB_INNOROUTES; there is no
	// IpInNoRoutes). nil: not read.
	SNMP map[string]int64 `json:"snmp,omitempty"`
	// Conntrack are /proc/net/stat/nf_conntrack's columns summed over
	// the CPUs (insert_failed, drop, early_drop, invalid, …; "entries" is
	// the table's size, the same on every row, kept once). The file is
	// the namespace's own (net->ct.stat, nf_conntrack_standalone.c). nil:
	// not read, or the kernel has no conntrack (see Notes).
	Conntrack map[string]uint64 `json:"conntrack,omitempty"`
	// Links are each link's statistics (IFLA_STATS64) by link name, each
	// counter named as /sys/class/net/LINK/statistics/ names it
	// (rx_packets, rx_dropped, tx_errors, rx_missed_errors, …), plus
	// carrier_changes where the source had it. nil: not read.
	Links map[string]LinkCounters `json:"links,omitempty"`
	// Notes say what was not read and why, one fact each.
	Notes []string `json:"notes,omitempty"`
}

// LinkCounters are one link's statistics by counter name.
type LinkCounters map[string]uint64

// LinkStatNames are the counters of struct rtnl_link_stats64
// (include/uapi/linux/if_link.h), in its order, by their sysfs names.
var LinkStatNames = [...]string{
	"rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped",
	"multicast", "collisions", "rx_length_errors", "rx_over_errors", "rx_crc_errors", "rx_frame_errors",
	"rx_fifo_errors", "rx_missed_errors", "tx_aborted_errors", "tx_carrier_errors", "tx_fifo_errors",
	"tx_heartbeat_errors", "tx_window_errors", "rx_compressed", "tx_compressed", "rx_nohandler",
	"rx_otherhost_dropped",
}
