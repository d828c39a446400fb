package probe

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/miekg/dns"
)

// DockerDNS is where a container asks its embedded DNS server:
// 127.0.0.11:53, which the container's DOCKER_OUTPUT rules DNAT to the
// resolver's own port.
var DockerDNS = netip.MustParseAddrPort("127.0.0.11:53")

// Query is one DNS query from inside a namespace: an A query for Name, to
// Server (zero: DockerDNS) over Proto (udp or tcp; "" = udp).
type Query struct {
	Netns, From string // as Request's Netns and Name
	Proto       string
	Server      netip.AddrPort
	Name        string
}

// Reply is the server's answer.
type Reply struct {
	Rcode     string // NOERROR, SERVFAIL, NXDOMAIN, ...
	Addrs     []netip.Addr
	Truncated bool
}

// Lookup sends the query and reads the reply. A UDP query leaves from a
// source port of its own, like every UDP probe: a port the kernel reused
// could meet a conntrack entry of a query made before the DNAT rules
// changed. Errors wrap the socket's (syscall.ECONNREFUSED when nothing
// listens where the query ends up, a timeout, ...).
func Lookup(ctx context.Context, q Query) (Reply, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	r := Request{Netns: q.Netns, Name: q.From, Proto: q.Proto, To: q.Server}
	if r.Proto == "" {
		r.Proto = "udp"
	}
	if !r.To.IsValid() {
		r.To = DockerDNS
	}
	if r.Proto != "tcp" && r.Proto != "udp" {
		return Reply{}, fmt.Errorf("dns %s: protocol %q: want tcp or udp", r.To, r.Proto)
	}
	conn, err := r.dial(ctx)
	if err != nil {
		return Reply{}, r.failDNS(q, err)
	}
	defer conn.Close()
	msg := new(dns.Msg).SetQuestion(dns.Fqdn(q.Name), dns.TypeA)
	in, _, err := new(dns.Client).ExchangeWithConnContext(ctx, msg, &dns.Conn{Conn: conn})
	if err != nil {
		return Reply{}, r.failDNS(q, err)
	}
	out := Reply{Rcode: dns.RcodeToString[in.Rcode], Truncated: in.Truncated}
	for _, rr := range in.Answer {
		if a, ok := rr.(*dns.A); ok {
			if ip, ok := netip.AddrFromSlice(a.A); ok {
				out.Addrs = append(out.Addrs, ip.Unmap())
			}
		}
	}
	return out, nil
}

func (r Request) failDNS(q Query, err error) error {
	return fmt.Errorf("dns %s: %w", q.Name, r.fail(err))
}
