package kmod

import "fmt"

// Need is one kind of request meshtrace makes that makes the kernel load a
// module when that is missing, with the modules that must be there first.
// The aliases are from modules.alias of Debian's 6.12 kernel, the code
// paths from torvalds/linux (cited per request).
type Need struct {
	// What is not read without them, for the note: "conntrack table".
	What string
	// Modules, in load order (a module's dependencies first).
	Modules []string
}

var (
	// NeedIPVS: a generic netlink family lookup of "IPVS". ctrl_getfamily
	// (net/netlink/genetlink.c) calls
	// request_module("net-pf-16-proto-16-family-IPVS") for an unknown
	// family; ip_vs carries that alias (MODULE_ALIAS_GENL_FAMILY in
	// net/netfilter/ipvs/ip_vs_ctl.c). ipvsadm makes the same lookup
	// (libipvs) and runs modprobe ip_vs itself when it fails; moby/ipvs's
	// ipvs.New runs `modprobe -va ip_vs` once.
	NeedIPVS = Need{"IPVS table", []string{"ip_vs"}}

	// NeedNFNetlink: opening a NETLINK_NETFILTER socket. netlink_create
	// (net/netlink/af_netlink.c) calls request_module("net-pf-16-proto-12")
	// for an unregistered protocol; nfnetlink carries that alias
	// (MODULE_ALIAS_NET_PF_PROTO(PF_NETLINK, NETLINK_NETFILTER) in
	// net/netfilter/nfnetlink.c).
	NeedNFNetlink = Need{"nfnetlink socket", []string{"nfnetlink"}}

	// NeedNFTables: a dump of nf_tables (NFNL_SUBSYS_NFTABLES = 10), as the
	// in-process reader and iptables-nft-save make it. nfnetlink_rcv_msg
	// and nfnetlink_rcv_batch (net/netfilter/nfnetlink.c) call
	// request_module("nfnetlink-subsys-%d") for a missing subsystem;
	// nf_tables carries nfnetlink-subsys-10
	// (MODULE_ALIAS_NFNL_SUBSYS(NFNL_SUBSYS_NFTABLES) in
	// net/netfilter/nf_tables_api.c). (iptables-nft-save also asks
	// nft_compat, nfnetlink-subsys-11, for xt match revisions; only for
	// matches its rules use, which hold nft_compat loaded.)
	NeedNFTables = Need{"nf_tables ruleset", []string{"nfnetlink", "nf_tables"}}

	// NeedConntrack: a ctnetlink dump (NFNL_SUBSYS_CTNETLINK = 1), as the live
	// reader, trace and conntrack -L make it: the same request_module
	// ("nfnetlink-subsys-1") loads nf_conntrack_netlink
	// (MODULE_ALIAS_NFNL_SUBSYS(NFNL_SUBSYS_CTNETLINK) in
	// net/netfilter/nf_conntrack_netlink.c), and nf_conntrack with it,
	// which starts tracking every connection of the node.
	NeedConntrack = Need{"conntrack table", []string{"nf_conntrack", "nfnetlink", "nf_conntrack_netlink"}}

	// NeedSockets: sock_diag dumps of TCP and UDP sockets (SOCK_DIAG_BY_FAMILY
	// for AF_INET and AF_INET6), as the live reader and ss make them. The
	// NETLINK_SOCK_DIAG socket itself is built in (net/core/sock_diag.c is
	// obj-y), but __sock_diag_cmd calls sock_load_diag_module(family, 0)
	// for a family without handler: request_module
	// ("net-pf-16-proto-4-type-%d"), inet_diag for 2 and 10; and
	// inet_diag_lock_handler (net/ipv4/inet_diag.c) calls
	// sock_load_diag_module(AF_INET, proto) (net/core/sock.c):
	// "net-pf-16-proto-4-type-2-6" is tcp_diag, "…-2-17" udp_diag.
	NeedSockets = Need{"listening sockets", []string{"inet_diag", "tcp_diag", "udp_diag"}}

	// NeedAFPacket: opening an AF_PACKET socket (trace's capture):
	// __sock_create (net/socket.c) calls request_module("net-pf-17") for
	// an unregistered family, af_packet's alias. (Built into Debian's
	// kernel; a module on some others.)
	NeedAFPacket = Need{"packet capture", []string{"af_packet"}}

	// NeedXfrm: opening a NETLINK_XFRM socket (the xfrm reader's SA and
	// policy dumps, `ip xfrm state|policy`). netlink_create
	// (net/netlink/af_netlink.c) calls request_module("net-pf-16-proto-6")
	// for an unregistered protocol; xfrm_user carries that alias
	// (MODULE_ALIAS_NET_PF_PROTO(PF_NETLINK, NETLINK_XFRM) in
	// net/xfrm/xfrm_user.c), and loads xfrm_algo with it. Dumping loads
	// no transform (esp4 and the ciphers load only when an SA is added).
	NeedXfrm = Need{"xfrm states and policies", []string{"xfrm_user"}}
)

// Check returns nil when every module of n is present, else an
// *AbsentError naming the first one that is not (the later ones are not
// asked).
func (n Need) Check(g Gate) error {
	for _, m := range n.Modules {
		if ok, how := g.Present(m); !ok {
			return &AbsentError{What: n.What, Module: m, How: how}
		}
	}
	return nil
}

// AbsentError is a read skipped because a module it would load is not
// there. It is not a fault: the data is "not collected", and the message
// says why in words for a note.
type AbsentError struct {
	What   string // "conntrack table"
	Module string // "nf_conntrack_netlink"
	How    string // "not loaded (not in /proc/modules, not built in)"
}

func (e *AbsentError) Error() string {
	return fmt.Sprintf("%s not read: %s is %s, and reading it would make the kernel load it (--allow-module-load reads it anyway)",
		e.What, e.Module, e.How)
}

// Reason is the short form: "ip_vs is not loaded (…)".
func (e *AbsentError) Reason() string { return e.Module + " is " + e.How }
