package trace

import (
	"context"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/meshtrace/meshtrace/inspect/parse"
	"github.com/meshtrace/meshtrace/source"
	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/trace/synth"
)

// The recorded two-node Docker 28 encrypted overlay: its SAs and out
// policies (keys redacted by collect).
const xfrmFixture = "../fixtures/swarm-vm28-xfrm"

var (
	fixNode0 = netip.MustParseAddr("192.0.2.10")
	fixNode1 = netip.MustParseAddr("192.0.2.11")
)

// recordedXfrm reads a node's recorded host xfrm, its addresses moved to
// the synthetic mesh's nodes (the SAs, SPIs and algorithms are Docker's).
func recordedXfrm(t *testing.T, node string) *topology.Xfrm {
	t.Helper()
	dir := xfrmFixture + "/" + node + "/collect/netns/host/"
	open := func(name string) *os.File {
		f, err := os.Open(dir + name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	states, _, err := parse.XfrmState(dir+"ip-xfrm-state.txt", open("ip-xfrm-state.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pols, _, err := parse.XfrmPolicy(dir+"ip-xfrm-policy.txt", open("ip-xfrm-policy.txt"))
	if err != nil {
		t.Fatal(err)
	}
	move := func(a netip.Addr) netip.Addr {
		switch a {
		case fixNode0:
			return synth.Node0IP
		case fixNode1:
			return synth.Node1IP
		}
		return a
	}
	movePrefix := func(p netip.Prefix) netip.Prefix {
		if !p.IsValid() {
			return p
		}
		return netip.PrefixFrom(move(p.Addr()), p.Bits())
	}
	for i := range states {
		states[i].Src, states[i].Dst = move(states[i].Src), move(states[i].Dst)
	}
	for i := range pols {
		pols[i].Sel.Src, pols[i].Sel.Dst = movePrefix(pols[i].Sel.Src), movePrefix(pols[i].Sel.Dst)
		for j := range pols[i].Tmpls {
			pols[i].Tmpls[j].Src, pols[i].Tmpls[j].Dst = move(pols[i].Tmpls[j].Src), move(pols[i].Tmpls[j].Dst)
		}
	}
	return &topology.Xfrm{States: states, Policies: pols}
}

// outSPI is the SPI the node's out policy sends through.
func outSPI(t *testing.T, x *topology.Xfrm) uint32 {
	t.Helper()
	for _, p := range x.Policies {
		if p.Dir == topology.XfrmOut && len(p.Tmpls) == 1 {
			return uint32(p.Tmpls[0].SPI)
		}
	}
	t.Fatal("no out policy")
	return 0
}

// espEnv is the synthetic two-node mesh's models as far as ESP needs
// them: each host's uplink address and xfrm (nil: not collected), each
// overlay's vxlan device.
func espEnv(x0, x1 *topology.Xfrm) *Env {
	model := func(addr netip.Addr, x *topology.Xfrm) *topology.Model {
		host := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "host"}, Role: topology.RoleHost, Xfrm: x,
			Links: []*topology.Link{{Name: "eth0", Kind: "device", Addrs: []netip.Prefix{netip.PrefixFrom(addr, 24)}}}}
		ovl := &topology.Namespace{NetnsRef: topology.NetnsRef{Name: "1-ovl0000001"}, Role: topology.RoleOverlay,
			Links: []*topology.Link{{Name: "vxlan0", Kind: "vxlan"}}}
		// Docker's static FDB: the other node's endpoints behind its VTEP.
		peer, remote := synth.Node1IP, synth.RemoteTask
		if addr == synth.Node1IP {
			peer, remote = synth.Node0IP, synth.SandboxIng
		}
		ovl.FDB = []topology.FDB{{MAC: topology.MACFrom(macOf(remote)), Dev: "vxlan0", Dst: peer, State: "permanent"}}
		return &topology.Model{Namespaces: []*topology.Namespace{host, ovl}}
	}
	return &Env{Proto: "tcp", Port: 8080, Nodes: []*Node{
		{Name: "node0", Model: model(synth.Node0IP, x0), Addr: synth.Node0IP},
		{Name: "node1", Model: model(synth.Node1IP, x1), Addr: synth.Node1IP},
	}}
}

// frameSource yields frames in time order at the mesh's points.
type frameSource struct {
	frames []Frame
	points []Point
	i      int
}

func (s *frameSource) Next(context.Context) (Item, error) {
	if s.i >= len(s.frames) {
		return Item{}, io.EOF
	}
	s.i++
	return Item{Frame: &s.frames[s.i-1]}, nil
}
func (s *frameSource) Points() []Point { return s.points }
func (s *frameSource) Ignored() int    { return 0 }

func streamESP(t *testing.T, env *Env, frames []Frame) *Result {
	t.Helper()
	slices.SortStableFunc(frames, func(a, b Frame) int { return int(a.TS - b.TS) })
	points := PointsOf(synth.MeshPoints)
	res, err := Collect(Stream(context.Background(), &frameSource{frames: frames, points: points}, Config{Env: env, PacketHops: true}))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDecodeESP(t *testing.T) {
	ip := synth.ESP(synth.Node0IP, synth.Node1IP, 7, 0x45a82588, 12, 90, synth.GCM)
	frame := synth.Ether(synth.MAC(synth.Node0IP), synth.MAC(synth.Node1IP), ip)
	var f Frame
	if err := Decode(LinkEthernet, frame, &f); err != nil {
		t.Fatalf("decode ESP: %v", err)
	}
	// gopacket's own decoding of the whole frame says the same.
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	esp, _ := pkt.Layer(layers.LayerTypeIPSecESP).(*layers.IPSecESP)
	if esp == nil {
		t.Fatal("gopacket finds no ESP layer in the synthetic frame")
	}
	if !f.IsESP() || f.ESP.SPI != esp.SPI || f.ESP.Seq != esp.Seq || f.Pkt.Proto != ProtoESP {
		t.Fatalf("decoded %+v, gopacket SPI %#x seq %d", f.ESP, esp.SPI, esp.Seq)
	}
	if int(f.Pkt.Len) != len(ip)-20 || int(f.IPLen) != len(ip) || f.Pkt.Src != IP4Of(synth.Node0IP) || f.Pkt.Dst != IP4Of(synth.Node1IP) {
		t.Fatalf("decoded %+v len %d", f.Pkt, f.IPLen)
	}
	// SPI 0 is never sent; a header cut short is a short packet.
	zero := synth.ESP(synth.Node0IP, synth.Node1IP, 7, 0, 1, 90, synth.GCM)
	if err := Decode(LinkRaw, zero, &f); err == nil {
		t.Error("SPI 0 decoded as ESP")
	}
	cut := slices.Clone(ip[:24])
	cut[2], cut[3] = 0, 24
	if err := Decode(LinkRaw, cut, &f); err != ErrShort {
		t.Errorf("ESP header cut short: %v, want ErrShort", err)
	}
}

// TestESPPayloadLen: RFC 4303 and RFC 4106 worked by hand for Docker's
// rfc4106(gcm(aes)) with a 64-bit ICV: ESP header 8, IV 8, plaintext
// (UDP 8 + VXLAN 8 + Ethernet 14 + the inner packet) plus pad length and
// next header, padded to 4, ICV 8.
func TestESPPayloadLen(t *testing.T) {
	gcm := espSizes{iv: 8, align: 4, icv: 8}
	for _, c := range []struct{ inner, want int }{
		{60, 8 + 8 + 92 + 8},     // SYN with options: 90 + 2 = 92
		{52, 8 + 8 + 84 + 8},     // ACK with timestamps: 82 + 2 = 84
		{53, 8 + 8 + 88 + 8},     // 83 + 2 = 85, padded to 88
		{1450, 8 + 8 + 1484 + 8}, // 1480 + 2 = 1482, padded to 1484
	} {
		if got := espPayloadLen(c.inner, gcm); got != c.want {
			t.Errorf("inner %d: ESP payload %d, want %d", c.inner, got, c.want)
		}
	}
	cbc := espSizes{iv: 16, align: 16, icv: 12}
	if got := espPayloadLen(60, cbc); got != 8+16+96+12 { // 92 padded to 96
		t.Errorf("cbc(aes): %d", got)
	}
}

func TestESPSizesOf(t *testing.T) {
	x := recordedXfrm(t, "node0")
	z, name, ok := espSizesOf(&x.States[0])
	if !ok || z != (espSizes{8, 4, 8}) || name != "rfc4106(gcm(aes))" {
		t.Errorf("Docker's SA: %+v %q %v", z, name, ok)
	}
	if _, name, ok := espSizesOf(&topology.XfrmState{Algos: []topology.XfrmAlgo{{Kind: topology.AlgoEnc, Name: "cbc(des3_ede)"}}}); ok || name != "cbc(des3_ede)" {
		t.Errorf("an algorithm of unknown sizes: %q %v", name, ok)
	}
}

// encryptedConns are remote connections over an encrypted underlay, one
// SA each way (the recorded SPIs), as frames.
func encryptedConns(t *testing.T, enc *synth.Encryption, conns ...synth.Conn) []Frame {
	for i := range conns {
		conns[i].Remote, conns[i].ESP = true, enc
	}
	return framesOf(t, conns...)
}

func TestTraceThroughESP(t *testing.T) {
	x0, x1 := recordedXfrm(t, "node0"), recordedXfrm(t, "node1")
	spi0, spi1 := outSPI(t, x0), outSPI(t, x1)
	enc := &synth.Encryption{SPI0: spi0, SPI1: spi1, Sizes: synth.GCM}
	frames := encryptedConns(t, enc, synth.HTTPConn(40001, true, 0, 90000))
	res := streamESP(t, espEnv(x0, x1), frames)
	if len(res.Flows) != 1 {
		t.Fatalf("%d flows, want 1", len(res.Flows))
	}
	fl := res.Flows[0]
	if !fl.Complete || !fl.Answered {
		t.Fatalf("flow complete %v answered %v", fl.Complete, fl.Answered)
	}
	// The SYN: out of node0's uplink in ESP through node0's out SA, in on
	// node1's, the same packet (SPI, seq).
	var esp []Hop
	for _, h := range fl.Hops {
		if h.ESP != nil {
			esp = append(esp, h)
		}
	}
	if len(esp) != 2 {
		t.Fatalf("%d ESP hops of the SYN, want 2 (node0 out, node1 in): %+v", len(esp), fl.Hops)
	}
	out, in := esp[0], esp[1]
	if out.Node != "" || out.Ifname != "eth0" || out.Dir != "out" || in.Node != "node1" || in.Dir != "in" {
		t.Errorf("ESP hops at %s/%s %s and %s/%s %s", out.Node, out.Ifname, out.Dir, in.Node, in.Ifname, in.Dir)
	}
	if uint32(out.ESP.SPI) != spi0 || out.ESP.Seq != 1 || out.ESP.Match != "length" || in.ESP.Match != "spi+seq" || in.ESP.Seq != 1 {
		t.Errorf("ESP out %+v in %+v", out.ESP, in.ESP)
	}
	if !strings.Contains(out.ESP.SA, topology.SPI(spi0).String()) || !strings.Contains(out.ESP.Policy, "dport 4789") {
		t.Errorf("not explained by the SA and the out policy: %+v", out.ESP)
	}
	if want := "esp spi " + topology.SPI(spi0).String() + " seq 1 (" + synth.Node0IP.String() + " -> " + synth.Node1IP.String() + ")"; out.Encap != want {
		t.Errorf("encap %q, want %q", out.Encap, want)
	}
	// The reply comes back through node1's out SA.
	var back *HopESP
	for _, h := range fl.ReplyHops {
		if h.ESP != nil && back == nil {
			back = h.ESP
		}
	}
	if back == nil || uint32(back.SPI) != spi1 || back.Src != synth.Node1IP.String() {
		t.Errorf("reply's ESP %+v, want SPI %#x from node1", back, spi1)
	}
	kinds := map[string]int{}
	for _, r := range fl.Rewrites {
		kinds[r.Kind]++
	}
	if kinds["esp-encrypt"] != 2 || kinds["esp-decrypt"] != 2 {
		t.Errorf("rewrites %v: want esp-encrypt and esp-decrypt for the request and the reply", kinds)
	}
	// Every packet's ESP sightings matched: 10 packets, each seen on
	// both underlays.
	if len(res.ESP) != 2 {
		t.Fatalf("ESP stats %+v, want one per SA", res.ESP)
	}
	for _, s := range res.ESP {
		if s.Sightings != 10 || s.Matched != 10 || s.Unmatched != 0 || s.Ambiguous != 0 || s.SA == "" {
			t.Errorf("SA %s: %+v", s.SPI, s)
		}
	}
	for _, p := range fl.Packets {
		if p.Sightings != 13 {
			t.Errorf("packet %s %s: %d sightings, want 13 (with both ESP)", p.Dir, p.Flags, p.Sightings)
		}
	}
}

// TestESPOneNode: only the receiving node's capture (no sender's ESP):
// ESP received is tied to the inner frame leaving the vxlan device after
// it by length.
func TestESPReceiverOnly(t *testing.T) {
	x0, x1 := recordedXfrm(t, "node0"), recordedXfrm(t, "node1")
	enc := &synth.Encryption{SPI0: outSPI(t, x0), SPI1: outSPI(t, x1), Sizes: synth.GCM}
	var frames []Frame
	for _, f := range encryptedConns(t, enc, synth.HTTPConn(40001, true, 0, 90000)) {
		if p := synth.MeshPoints[f.Point]; strings.HasPrefix(p, "node1/") {
			frames = append(frames, f)
		}
	}
	res := streamESP(t, espEnv(x0, x1), frames)
	if len(res.Flows) != 1 {
		t.Fatalf("%d flows", len(res.Flows))
	}
	h := res.Flows[0].Hops
	if len(h) == 0 || h[0].ESP == nil || h[0].ESP.Match != "length" || h[0].Node != "node1" || h[0].Dir != "in" {
		t.Fatalf("first hop of the request on node1: %+v", h)
	}
	for _, s := range res.ESP {
		if s.Matched != 5 || s.Unmatched != 0 {
			t.Errorf("SA %s: %+v", s.SPI, s)
		}
	}
}

// TestESPAmbiguous: two connections whose packets have the same lengths
// leave node0's vxlan device at the same moment: which ESP packet is
// which cannot be told from the underlay alone (order is no proof
// across connections): said ambiguous, never attached; the same
// packets on node1's underlay are then matched by length or not at all.
func TestESPAmbiguous(t *testing.T) {
	x0, x1 := recordedXfrm(t, "node0"), recordedXfrm(t, "node1")
	enc := &synth.Encryption{SPI0: outSPI(t, x0), SPI1: outSPI(t, x1), Sizes: synth.GCM}
	a, b := synth.HTTPConn(40001, true, 0, 90000), synth.HTTPConn(40002, true, 0, 190000)
	fa := encryptedConns(t, enc, a)
	fb := encryptedConns(t, enc, b)
	// b's sightings 1 µs after a's: each of a's ESP packets has two
	// inner frames of its length before it.
	for i := range fb {
		fb[i].TS += 1000
	}
	// keep only node0's points: no twin on node1 to confirm anything
	var frames []Frame
	for _, f := range append(fa, fb...) {
		if !strings.HasPrefix(synth.MeshPoints[f.Point], "node1/") {
			frames = append(frames, f)
		}
	}
	res := streamESP(t, espEnv(x0, x1), frames)
	amb := 0
	for _, s := range res.ESP {
		amb += s.Ambiguous
	}
	if amb == 0 {
		t.Fatalf("no ambiguous ESP sighting: %+v", res.ESP)
	}
	for _, fl := range res.Flows {
		for _, p := range fl.Packets {
			for _, h := range p.Hops {
				if h.ESP != nil && h.ESP.Match == "length+order" {
					t.Errorf("flow %d: an ESP packet matched by order across connections: %+v", fl.ID, h.ESP)
				}
			}
		}
	}
}

// TestESPNotCollected: without the xfrm state, ESP is seen and said not
// explained, never matched by a guessed algorithm.
func TestESPNotCollected(t *testing.T) {
	x0, x1 := recordedXfrm(t, "node0"), recordedXfrm(t, "node1")
	enc := &synth.Encryption{SPI0: outSPI(t, x0), SPI1: outSPI(t, x1), Sizes: synth.GCM}
	frames := encryptedConns(t, enc, synth.HTTPConn(40001, true, 0, 90000))
	for _, env := range []*Env{espEnv(nil, nil), nil} {
		res := streamESP(t, env, slices.Clone(frames))
		if len(res.ESP) != 2 {
			t.Fatalf("ESP stats %+v", res.ESP)
		}
		for _, s := range res.ESP {
			if s.Matched != 0 || s.Unmatched != s.Sightings || s.SA != "" || s.Note == "" {
				t.Errorf("SA %s without its xfrm state: %+v", s.SPI, s)
			}
			if env != nil && !strings.Contains(s.Note, "not collected") {
				t.Errorf("note %q does not say the state was not collected", s.Note)
			}
		}
		var b strings.Builder
		if err := WriteText(&b, res); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "esp spi "+topology.SPI(enc.SPI0).String()) {
			t.Errorf("text summary does not name the SA:\n%s", b.String())
		}
	}
}

// TestESPWindow: an inner frame long before the ESP packet is not its.
func TestESPWindow(t *testing.T) {
	x0, x1 := recordedXfrm(t, "node0"), recordedXfrm(t, "node1")
	enc := &synth.Encryption{SPI0: outSPI(t, x0), SPI1: outSPI(t, x1), Sizes: synth.GCM}
	frames := encryptedConns(t, enc, synth.HTTPConn(40001, true, 0, 90000))
	var kept []Frame
	for _, f := range frames {
		if strings.HasPrefix(synth.MeshPoints[f.Point], "node1/") {
			continue
		}
		if f.IsESP() {
			f.TS += int64(time.Second)
		}
		kept = append(kept, f)
	}
	res := streamESP(t, espEnv(x0, x1), kept)
	for _, s := range res.ESP {
		if s.Matched != 0 || s.Unmatched != s.Sightings {
			t.Errorf("SA %s: %+v", s.SPI, s)
		}
	}
}

// TestPlanKeepsESP: the capture keeps ESP where a host has ESP SAs.
func TestPlanKeepsESP(t *testing.T) {
	for _, c := range []struct {
		x0, x1 *topology.Xfrm
		want   bool
	}{{recordedXfrm(t, "node0"), recordedXfrm(t, "node1"), true}, {nil, nil, false}, {&topology.Xfrm{}, nil, false}} {
		plan, err := Plan(espEnv(c.x0, c.x1), nil)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Filter.ESP != c.want {
			t.Errorf("xfrm %v/%v: filter keeps ESP %v, want %v", c.x0 != nil, c.x1 != nil, plan.Filter.ESP, c.want)
		}
	}
}

// recordedEnv is the recorded two-node Docker 28 encrypted overlay as
// trace sees it: node0's east-west path from its sec task to sec's VIP
// (one backend local, one on node1 behind ESP), node1's model.
func recordedEnv(t *testing.T) *Env {
	t.Helper()
	var nodes []*Node
	for i, name := range []string{"node0", "node1"} {
		m, err := source.Load(context.Background(), source.Spec{Bundle: xfrmFixture + "/" + name + "/collect"})
		if err != nil {
			t.Fatal(err)
		}
		n := &Node{Name: name, Model: m, Addr: []netip.Addr{fixNode0, fixNode1}[i]}
		if i == 0 {
			if n.Path, err = topology.FindPath(m, topology.Query{Proto: "tcp", Port: 80, VIP: netip.MustParseAddr("10.0.1.2"), Netns: "c0f7053c15a2"}); err != nil {
				t.Fatal(err)
			}
		}
		nodes = append(nodes, n)
	}
	return &Env{Proto: "tcp", Port: 80, Nodes: nodes}
}

// TestPlanVIPEncrypted: an east-west trace over the encrypted overlay
// captures the caller, the load balancer's leg, the VXLAN device and the
// underlay on both nodes, and keeps ESP.
func TestPlanVIPEncrypted(t *testing.T) {
	plan, err := Plan(recordedEnv(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Filter.ESP || !plan.Filter.VXLAN || !slices.Contains(plan.Filter.Ports, 80) {
		t.Errorf("filter %+v: want ESP, VXLAN and port 80", plan.Filter)
	}
	label := func(s Step) string {
		p := plan.Points[s.Point]
		return p.Node + ":" + p.Netns + "/" + p.Ifname + " " + p.Role + " " + s.Dir.String()
	}
	var remote []string
	for _, r := range plan.Routes {
		if r.Backend == "10.0.1.4" {
			for _, s := range r.Steps {
				remote = append(remote, label(s))
			}
		}
	}
	want := []string{
		"node0:c0f7053c15a2/eth0 caller out",
		"node0:1-ktru40a4mc/veth", // the caller's port (name read below)
		"node0:1-ktru40a4mc/veth", // the load balancer's port
		"node0:lb_ktru40a4m/eth0 lb in",
		"node0:lb_ktru40a4m/eth0 lb out",
		"node0:1-ktru40a4mc/veth",
		"node0:1-ktru40a4mc/vxlan0 vxlan out",
		"node0:host/eth0 uplink out",
		"node1:host/eth0 uplink in",
		"node1:1-ktru40a4mc/vxlan0 vxlan in",
		"node1:1-ktru40a4mc/veth",
		"node1:",
	}
	if len(remote) != len(want) {
		t.Fatalf("route to 10.0.1.4:\n%s\nwant %d steps", strings.Join(remote, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(remote[i], want[i]) {
			t.Errorf("step %d: %q, want %q...", i+1, remote[i], want[i])
		}
	}
}

// TestESPReceiverClockAhead: node1's clock is ahead, so its sightings come
// first: its ESP is tied to its inner frame by length, and node0's ESP
// with that (SPI, seq) is the same packet: each request packet's two ESP
// sightings say so, one by length, one by (SPI, seq).
func TestESPReceiverClockAhead(t *testing.T) {
	x0, x1 := recordedXfrm(t, "node0"), recordedXfrm(t, "node1")
	enc := &synth.Encryption{SPI0: outSPI(t, x0), SPI1: outSPI(t, x1), Sizes: synth.GCM}
	frames := encryptedConns(t, enc, synth.HTTPConn(40001, true, 0, 90000))
	for i := range frames {
		if strings.HasPrefix(synth.MeshPoints[frames[i].Point], "node1/") {
			frames[i].TS -= int64(5 * time.Millisecond)
		}
	}
	res := streamESP(t, espEnv(x0, x1), frames)
	if len(res.Flows) != 1 {
		t.Fatalf("%d flows", len(res.Flows))
	}
	for _, p := range res.Flows[0].Packets {
		var got []string
		for _, h := range p.Hops {
			if h.ESP != nil {
				got = append(got, h.Node+" "+h.Dir+" "+h.ESP.Match)
			}
		}
		slices.Sort(got)
		want := []string{" out spi+seq", "node1 in length"}
		if p.Dir == "reply" {
			want = []string{" in spi+seq", "node1 out length"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("packet %s %s: ESP sightings %q, want %q", p.Dir, p.Flags, got, want)
		}
	}
	for _, s := range res.ESP {
		if s.Matched != s.Sightings {
			t.Errorf("SA %s: %+v", s.SPI, s)
		}
	}
}

func macOf(a netip.Addr) []byte {
	m := synth.MAC(a)
	return m[:]
}

// TestESPFloodedFrame: a bridge floods a frame of another connection, of
// the same length, out of the vxlan device just after the real one; the
// device's FDB has no entry for its MAC, so the device drops it and no
// ESP packet carries it: it is no candidate, and the ESP is matched.
func TestESPFloodedFrame(t *testing.T) {
	x0, x1 := recordedXfrm(t, "node0"), recordedXfrm(t, "node1")
	enc := &synth.Encryption{SPI0: outSPI(t, x0), SPI1: outSPI(t, x1), Sizes: synth.GCM}
	a := encryptedConns(t, enc, synth.HTTPConn(40001, true, 0, 90000))
	b := encryptedConns(t, &synth.Encryption{SPI0: 1, SPI1: 2, Sizes: synth.GCM}, synth.HTTPConn(40002, true, 0, 190000))
	frames := slices.Clone(a)
	for _, f := range b {
		if f.Point == 9 && f.Dir == DirOut { // b's request out of node0's vxlan0 only, flooded
			f.DstMAC = [6]byte{0x02, 0x42, 0x0a, 0, 1, 0x05}
			f.TS += 1000
			frames = append(frames, f)
		}
	}
	res := streamESP(t, espEnv(x0, x1), frames)
	for _, s := range res.ESP {
		if s.Matched != s.Sightings || s.Ambiguous != 0 {
			t.Errorf("SA %s: %+v", s.SPI, s)
		}
	}
}

// TestESPMemoryBounded: what the matcher keeps follows the packets in
// flight, not the length of the capture.
func TestESPMemoryBounded(t *testing.T) {
	x0, x1 := recordedXfrm(t, "node0"), recordedXfrm(t, "node1")
	enc := &synth.Encryption{SPI0: outSPI(t, x0), SPI1: outSPI(t, x1), Sizes: synth.GCM}
	var conns []synth.Conn
	for i := range 40 {
		conns = append(conns, synth.HTTPConn(uint16(40000+i), true, time.Duration(i)*time.Second, uint32(1000*i+1)))
	}
	frames := encryptedConns(t, enc, conns...)
	slices.SortStableFunc(frames, func(a, b Frame) int { return int(a.TS - b.TS) })
	points := PointsOf(synth.MeshPoints)
	cr := NewCorrelator(Options{})
	m := newESPMatcher(espEnv(x0, x1), cr)
	peak := 0
	for i := range frames {
		f := &frames[i]
		if f.IsESP() {
			m.esp(f, points)
		} else {
			cr.Add(f)
			m.innerFrame(f, cr.lastLP, points)
		}
		cr.Take()
		peak = max(peak, len(m.byID))
	}
	// 40 connections of 20 ESP packets each: 800 matched; a window of
	// 2 s holds at most three connections' 60.
	if peak > 60 {
		t.Errorf("the matcher kept %d ESP packets at once", peak)
	}
	st := m.stats()
	if len(st) != 2 || st[0].Matched != 400 || st[1].Matched != 400 {
		t.Errorf("stats %+v", st)
	}
}
