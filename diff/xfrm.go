package diff

import (
	"fmt"
	"strings"

	"github.com/meshtrace/meshtrace/topology"
)

// xfrm compares the IPsec SAs by protocol, SPI and addresses (their
// reqid, mode, algorithms by name and key length, marks and
// encapsulation) and the policies by direction, selector and mark (their
// action, priority and templates, which name the SPIs). No key is
// compared or printed: the model holds none.
func (d *netnsDiff) xfrm(a, b *topology.Namespace) {
	if !d.collected(AreaXfrm, a.Xfrm != nil, b.Xfrm != nil) {
		return
	}
	if d.collected(AreaXfrm+" SAs", a.Xfrm.States != nil, b.Xfrm.States != nil) {
		pairs(d, XfrmChanged, "SA ", a.Xfrm.States, b.Xfrm.States, saKey, saLine, func(topology.XfrmState) bool { return false })
	}
	if d.collected(AreaXfrm+" policies", a.Xfrm.Policies != nil, b.Xfrm.Policies != nil) {
		pairs(d, XfrmChanged, "policy ", a.Xfrm.Policies, b.Xfrm.Policies, policyKey, policyLine, func(topology.XfrmPolicy) bool { return false })
	}
}

func saKey(s topology.XfrmState) string {
	return fmt.Sprintf("%s %s %s->%s", s.Proto, s.SPI, s.Src, s.Dst)
}

func saLine(s topology.XfrmState) string {
	var b strings.Builder
	b.WriteString(s.String())
	for _, a := range s.Algos {
		fmt.Fprintf(&b, " %s %s", a.Kind, a.Name)
		if a.KeyBits != 0 {
			fmt.Fprintf(&b, " %d bits", a.KeyBits)
		}
	}
	if s.Mark != nil {
		b.WriteString(" mark " + s.Mark.String())
	}
	if s.OutputMark != nil {
		b.WriteString(" output-mark " + s.OutputMark.String())
	}
	if e := s.Encap; e != nil {
		fmt.Fprintf(&b, " encap %s %d %d", e.Type, e.SPort, e.DPort)
	}
	if s.IfID != 0 {
		fmt.Fprintf(&b, " if_id %#x", s.IfID)
	}
	if len(s.Flags) > 0 {
		b.WriteString(" flag " + strings.Join(s.Flags, " "))
	}
	return b.String()
}

func policyKey(p topology.XfrmPolicy) string {
	s := fmt.Sprintf("dir %s src %s dst %s", p.Dir, p.Sel.Src, p.Sel.Dst)
	if p.Socket {
		s = "socket " + s
	}
	if p.Sel.Proto != 0 {
		s += fmt.Sprintf(" proto %s sport %d dport %d", topology.ProtoName(p.Sel.Proto), p.Sel.SPort, p.Sel.DPort)
	}
	if p.Sel.Dev != "" {
		s += " dev " + p.Sel.Dev
	}
	if p.Mark != nil {
		s += " mark " + p.Mark.String()
	}
	if p.IfID != 0 {
		s += fmt.Sprintf(" if_id %#x", p.IfID)
	}
	return s
}

func policyLine(p topology.XfrmPolicy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s action %s priority %d", policyKey(p), p.Action, p.Priority)
	for _, t := range p.Tmpls {
		fmt.Fprintf(&b, " tmpl %s %s->%s spi %s reqid %d mode %s", t.Proto, t.Src, t.Dst, t.SPI, t.Reqid, t.Mode)
		if t.Optional {
			b.WriteString(" level use")
		}
	}
	return b.String()
}
