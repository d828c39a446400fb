package mesh

import (
	"math/rand/v2"
	"net/netip"

	"github.com/miekg/dns"
)

// The embedded DNS server's answers, as dockerd's resolver gives them
// (libnetwork resolver.go): a service's name answers its VIP, or its
// tasks' addresses when it is in dnsrr mode; tasks.NAME answers the
// tasks' addresses; a task's name (web.1) answers its address. Answers
// carry a TTL of 600 and come shuffled. A name the mesh knows has no IPv6
// address: AAAA gets an empty NOERROR. Everything else would go to the
// node's external servers; the mesh has none, so it fails (SERVFAIL, as
// dockerd answers when it does not forward).
const dnsTTL = 600

// dnsNames maps a lower-case, fully qualified name to its addresses.
type dnsNames map[string][]netip.Addr

// newDNSNames is the names of every service and task of the mesh: the
// resolver of every task answers the same (they all share the ingress
// network).
func newDNSNames(st *State) dnsNames {
	n := dnsNames{}
	add := func(name string, a netip.Addr) {
		if a.IsValid() {
			fq := dns.CanonicalName(name)
			n[fq] = append(n[fq], a)
		}
	}
	for _, s := range st.Services {
		if !s.DNSRR() {
			add(s.Name, s.VIP)
		}
		for _, t := range s.Tasks {
			if s.DNSRR() {
				add(s.Name, t.IP)
			}
			add("tasks."+s.Name, t.IP)
			add(t.Name, t.IP)
		}
	}
	return n
}

// Lookup returns the addresses name answers (nil: not a name of the
// mesh), in the order the state lists them.
func (n dnsNames) Lookup(name string) []netip.Addr { return n[dns.CanonicalName(name)] }

// ServeDNS answers one query.
func (n dnsNames) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	w.WriteMsg(n.answer(q, w.LocalAddr().Network()))
}

// answer is the reply to q received over network (udp or tcp): a query
// with no question gets FORMERR.
func (n dnsNames) answer(q *dns.Msg, network string) *dns.Msg {
	if q == nil || len(q.Question) == 0 {
		return new(dns.Msg).SetRcodeFormatError(q)
	}
	qq := q.Question[0]
	addrs, known := n[dns.CanonicalName(qq.Name)]
	resp := new(dns.Msg)
	switch {
	case known && qq.Qclass == dns.ClassINET && qq.Qtype == dns.TypeA:
		resp.SetReply(q)
		shuffled := append([]netip.Addr(nil), addrs...)
		rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, a := range shuffled {
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: dnsTTL},
				A:   a.AsSlice()})
		}
	case known && qq.Qclass == dns.ClassINET && qq.Qtype == dns.TypeAAAA:
		resp.SetReply(q)
	default:
		resp.SetRcode(q, dns.RcodeServerFailure)
	}
	resp.RecursionAvailable = true
	size := dns.MaxMsgSize
	if network != "tcp" {
		size = dns.MinMsgSize
		if opt := q.IsEdns0(); opt != nil {
			size = max(size, int(opt.UDPSize()))
		}
	}
	resp.Truncate(size)
	return resp
}
