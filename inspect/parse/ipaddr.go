package parse

import (
	"io"
	"net/netip"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// NetnsIDNamed is the Peer.NetnsID of a link whose peer namespace `ip`
// printed by name (`link-netns NAME`, which it does for namespaces it finds
// under /run/netns) instead of by id (`link-netnsid N`): the id is not in
// the text, Peer.Netns holds NAME.
const NetnsIDNamed = -2

// IPAddr parses the output of `ip addr` or `ip -d addr` (iproute2) into
// links, in file order: index, name, flags (Up is the UP flag), mtu, master,
// MAC (of link/ether and link/loopback links), addresses, veth peer and,
// from `ip -d`, the kind and the VXLAN attributes.
//
// The peer: "eth0@if7" with "link-netnsid 1" is Peer{Index: 7, NetnsID: 1};
// without link-netnsid the peer is in the same namespace (NetnsID -1); with
// "link-netns NAME" NetnsID is NetnsIDNamed and Netns is NAME; "v2@v3" (the
// peer named, in the same namespace) is Peer{Index: index of v3, NetnsID:
// -1, Ifname: "v3"}. Only veths get a Peer: the "@" of a macvlan, vlan or
// moved VXLAN device names its lower or original link, not a peer.
//
// The kind: with -d (recognised by "promiscuity" on the link/ line) it is the
// first word of the kind line right after the link/ line (veth, bridge,
// vxlan, macvlan, ...), "loopback" for link/loopback and "device" when there
// is no kind line. Plain `ip addr` does not show kinds, and none is invented:
// "loopback" for link/loopback, "" (unknown) for everything else. A name
// printed as NAME@ifN keeps what it says, Peer{Index: N, NetnsID: ...}, with
// the kind unknown: it is a veth's peer, or the link a VXLAN device created
// in another namespace still names (Docker's overlay "vxlan0@if7"); which
// one, topology.InferKinds decides from the wiring.
func IPAddr(file string, r io.Reader) ([]*topology.Link, error) {
	p := &addrParser{file: file, byIndex: map[int]bool{}, byName: map[string]*topology.Link{}}
	ls := newLines(file, r)
	for {
		line, ok := ls.next()
		if !ok {
			break
		}
		if trimSpace(line) == "" {
			continue
		}
		p.n = ls.n
		if err := p.line(line); err != nil {
			return nil, err
		}
	}
	if err := ls.err(); err != nil {
		return nil, err
	}
	links := make([]*topology.Link, len(p.links))
	for i := range p.links {
		links[i] = p.finish(&p.links[i])
	}
	return links, nil
}

type addrLink struct {
	l         *topology.Link
	at        string // what followed "@" in the name, "" when nothing
	netnsid   int
	netnsName string
	linkType  string // after "link/": ether, loopback, none, ...
	detailed  bool
	kind      string
	afterLink bool // the previous line was the link/ line
}

type addrParser struct {
	file    string
	n       int
	links   []addrLink
	byIndex map[int]bool
	byName  map[string]*topology.Link
	f       []string
}

func (p *addrParser) errorf(format string, args ...any) error {
	return errorf(p.file, p.n, format, args...)
}

func (p *addrParser) line(line string) error {
	if line[0] != ' ' && line[0] != '\t' {
		return p.header(line)
	}
	if len(p.links) == 0 {
		return p.errorf("not ip addr output: indented line before the first link")
	}
	cur := &p.links[len(p.links)-1]
	afterLink := cur.afterLink
	cur.afterLink = false
	f := fields(p.f, line)
	p.f = f
	switch w := f[0]; {
	case strings.HasPrefix(w, "link/"):
		return p.linkLine(cur, f)
	case w == "inet" || w == "inet6":
		return p.addr(cur, f)
	case afterLink && cur.detailed && cur.kind == "" && isKindWord(w):
		cur.kind = w
		if w == "vxlan" {
			return p.vxlan(cur, f)
		}
	}
	// valid_lft, altname, bridge_slave, ...: nothing the model keeps
	return nil
}

// otherAddrFormat names the `ip` output formats a link line may come from
// that lose what the model needs ("" for none): `ip -br addr` (brief: no
// index, MTU, master or peer index) and `ip -o addr` (one line an address:
// no link lines at all).
func otherAddrFormat(line string) string {
	f := strings.Fields(line)
	if len(f) >= 2 {
		switch f[1] {
		case "UP", "DOWN", "UNKNOWN", "LOWERLAYERDOWN", "DORMANT", "NOTPRESENT", "TESTING":
			if !strings.HasSuffix(f[0], ":") {
				return "this is `ip -br addr` (brief), which has no link index, MTU, master or peer index: collect `ip addr` or `ip -d addr`"
			}
		}
	}
	if len(f) >= 3 && strings.HasSuffix(f[0], ":") && !strings.HasSuffix(f[1], ":") && (f[2] == "inet" || f[2] == "inet6" || strings.HasPrefix(f[2], "link/")) {
		return "this is `ip -o` (one line an address or link), which has no link flags, MTU or master on address lines: collect `ip addr` or `ip -d addr`"
	}
	return ""
}

// header parses "7: eth0@if8: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450
// qdisc noqueue master br0 state UP group default qlen 1000".
func (p *addrParser) header(line string) error {
	if why := otherAddrFormat(line); why != "" {
		return p.errorf("%s", why)
	}
	colon := strings.IndexByte(line, ':')
	if colon < 0 {
		return p.errorf("not ip addr output: %q is not a link line (\"N: NAME: <FLAGS> mtu ...\")", clip(line))
	}
	idx, ok := atoi(line[:colon])
	if !ok || idx == 0 {
		return p.errorf("not ip addr output: %q is not a link line (\"N: NAME: <FLAGS> mtu ...\")", clip(line))
	}
	rest := strings.TrimLeft(line[colon+1:], " ")
	colon = strings.IndexByte(rest, ':')
	if colon <= 0 {
		return p.errorf("link %d: no name", idx)
	}
	name, at := rest[:colon], ""
	if i := strings.LastIndexByte(name, '@'); i > 0 {
		name, at = name[:i], name[i+1:]
	}
	if p.byIndex[idx] {
		return p.errorf("link index %d appears twice", idx)
	}
	if p.byName[name] != nil {
		return p.errorf("link %s appears twice", name)
	}
	f := fields(p.f, rest[colon+1:])
	p.f = f
	if len(f) == 0 || f[0][0] != '<' || f[0][len(f[0])-1] != '>' {
		return p.errorf("link %s: no <FLAGS>", name)
	}
	l := &topology.Link{Index: idx, Name: name}
	for flag := range strings.SplitSeq(f[0][1:len(f[0])-1], ",") {
		if flag == "UP" {
			l.Up = true
		}
	}
	for i := 1; i+1 < len(f); i++ {
		switch f[i] {
		case "mtu":
			mtu, ok := atoi(f[i+1])
			if !ok {
				return p.errorf("link %s: bad mtu %q", name, f[i+1])
			}
			l.MTU = mtu
		case "master":
			l.Master = f[i+1]
		}
	}
	if l.MTU == 0 {
		return p.errorf("link %s: no mtu (truncated line?)", name)
	}
	p.byIndex[idx] = true
	p.byName[name] = l
	p.links = append(p.links, addrLink{l: l, at: at, netnsid: -1})
	return nil
}

// linkLine parses "link/ether MAC brd MAC [link-netnsid N | link-netns NAME]
// [promiscuity N ...]".
func (p *addrParser) linkLine(cur *addrLink, f []string) error {
	cur.afterLink = true
	cur.linkType = f[0][len("link/"):]
	if len(f) > 1 && (cur.linkType == "ether" || cur.linkType == "loopback") {
		mac, err := topology.ParseMAC(f[1])
		if err != nil {
			return p.errorf("link %s: bad link/%s address %q", cur.l.Name, cur.linkType, f[1])
		}
		cur.l.MAC = mac
	}
	for i := 1; i < len(f); i++ {
		switch f[i] {
		case "link-netnsid":
			if i+1 >= len(f) {
				return p.errorf("link %s: link-netnsid without a value", cur.l.Name)
			}
			id, ok := atoi(f[i+1])
			if !ok {
				return p.errorf("link %s: bad link-netnsid %q", cur.l.Name, f[i+1])
			}
			cur.netnsid = id
			i++
		case "link-netns":
			if i+1 >= len(f) {
				return p.errorf("link %s: link-netns without a name", cur.l.Name)
			}
			cur.netnsName = f[i+1]
			i++
		case "promiscuity":
			cur.detailed = true
		}
	}
	return nil
}

// addr parses "inet 10.0.0.2/24 brd ... scope global eth0", "inet6
// fe80::1/64 scope link" and the point-to-point "inet 10.0.0.1 peer
// 10.0.0.2/32 scope ...", whose local address takes the peer's length.
func (p *addrParser) addr(cur *addrLink, f []string) error {
	if len(f) < 2 {
		return p.errorf("link %s: %s without an address", cur.l.Name, f[0])
	}
	s := f[1]
	if !strings.Contains(s, "/") {
		bits := -1
		if len(f) > 3 && f[2] == "peer" {
			if pp, err := netip.ParsePrefix(f[3]); err == nil {
				bits = pp.Bits()
			}
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p.errorf("link %s: bad address %q", cur.l.Name, s)
		}
		if bits < 0 || bits > a.BitLen() {
			bits = a.BitLen()
		}
		cur.l.Addrs = append(cur.l.Addrs, netip.PrefixFrom(a, bits))
		return nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return p.errorf("link %s: bad address %q", cur.l.Name, s)
	}
	if (f[0] == "inet") != pfx.Addr().Is4() {
		return p.errorf("link %s: %s address %q of the wrong family", cur.l.Name, f[0], s)
	}
	cur.l.Addrs = append(cur.l.Addrs, pfx)
	return nil
}

// vxlan parses "vxlan id 4096 [group G | remote R] [local L] ... dstport
// 4789 [nolearning] [proxy] ...".
func (p *addrParser) vxlan(cur *addrLink, f []string) error {
	v := &topology.VXLANInfo{Learning: true}
	for i := 1; i < len(f); i++ {
		switch f[i] {
		case "nolearning":
			v.Learning = false
		case "proxy":
			v.Proxy = true
		case "id", "dstport", "local", "group":
			if i+1 >= len(f) {
				return p.errorf("link %s: vxlan %s without a value", cur.l.Name, f[i])
			}
			val := f[i+1]
			i++
			switch f[i-1] {
			case "local", "group":
				a, err := netip.ParseAddr(val)
				if err != nil {
					return p.errorf("link %s: bad vxlan %s %q", cur.l.Name, f[i-1], val)
				}
				if f[i-1] == "local" {
					v.Local = a
				} else {
					v.Group = a
				}
			default:
				n, ok := atoi(val)
				if !ok {
					return p.errorf("link %s: bad vxlan %s %q", cur.l.Name, f[i-1], val)
				}
				if f[i-1] == "id" {
					v.ID = n
				} else {
					v.Port = n
				}
			}
		}
	}
	cur.l.VXLAN = v
	return nil
}

// isKindWord reports whether w can be the kind on the line after link/ in
// `ip -d` output, as opposed to slave info ("bridge_slave ...") or the
// other lines that may follow (altname, alias, vf, ...).
func isKindWord(w string) bool {
	switch w {
	case "altname", "alias", "vf", "prop", "inet", "inet6", "valid_lft":
		return false
	}
	if strings.HasSuffix(w, "_slave") {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// finish decides the kind and the peer once all links are known.
func (p *addrParser) finish(a *addrLink) *topology.Link {
	l := a.l
	ifN := -1
	if strings.HasPrefix(a.at, "if") {
		if n, ok := atoi(a.at[2:]); ok {
			ifN = n
		}
	}
	switch {
	case a.detailed && a.kind != "":
		l.Kind = a.kind
	case a.linkType == "loopback":
		l.Kind = "loopback"
	case a.detailed:
		l.Kind = "device"
	}
	if a.at == "" || a.at == "NONE" || (l.Kind != "veth" && !(l.Kind == "" && ifN >= 0)) {
		return l
	}
	switch {
	case ifN >= 0:
		l.Peer = &topology.Peer{Index: ifN, NetnsID: a.netnsid}
		if a.netnsName != "" {
			l.Peer.NetnsID, l.Peer.Netns = NetnsIDNamed, a.netnsName
		}
	default: // the peer is named: same namespace
		l.Peer = &topology.Peer{NetnsID: -1, Ifname: a.at}
		if pl := p.byName[a.at]; pl != nil {
			l.Peer.Index = pl.Index
		}
	}
	return l
}
