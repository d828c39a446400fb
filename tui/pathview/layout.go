package pathview

import (
	"strings"

	"github.com/meshtrace/meshtrace/tui/ui"
)

// border is a box outline: plain, or heavy for the selected box.
type border struct{ tl, tr, bl, br, h, v string }

var (
	thin  = border{"╭", "╮", "╰", "╯", "─", "│"}
	heavy = border{"┏", "┓", "┗", "┛", "━", "┃"}
)

// Joins between boxes: the chain's arrows and the backends' gap, and what
// starts a wrapped row of each.
const (
	chainSep, chainCont = " → ", " ↳ "
	backSep, backCont   = "  ", "  "
)

// geometry is where the boxes go, computed when the path, the size or the
// marks change, never while drawing: a keypress then draws only the rows
// on screen, however many backends the path has.
type geometry struct {
	marks     []mark  // per box (chain, then backends)
	cw        []int   // content width per box
	row       []int   // row of each box within its part
	chainRows [][]int // box indexes per row
	backRows  [][]int
	drawn     [][]string // each box drawn unselected
}

func (m Model) relayout() Model {
	n := m.boxes()
	g := geometry{marks: m.marksAll(), cw: make([]int, n), row: make([]int, n)}
	maxW := min(32, max(12, m.w-ui.Width(chainCont)))
	for i := 0; i < n; i++ {
		b := m.box(i)
		cw := ui.Width(boxTitle(b, g.marks[i], true)) + 2
		for _, l := range b.lines {
			cw = max(cw, ui.Width(l))
		}
		g.cw[i] = min(cw, maxW-4)
	}
	g.drawn = make([][]string, n)
	for i := 0; i < n; i++ {
		g.drawn[i] = m.draw(m.box(i), g.marks[i], false, g.cw[i])
	}
	g.chainRows = g.wrap(0, len(m.chain), chainSep, chainCont, m.w)
	g.backRows = g.wrap(len(m.chain), n, backSep, backCont, m.w)
	m.geo = g
	return m
}

// wrap assigns boxes [from, to) to rows of at most w cells.
func (g *geometry) wrap(from, to int, sep, cont string, w int) [][]int {
	var rows [][]int
	rowW := 0
	for i := from; i < to; i++ {
		bw := g.cw[i] + 4
		switch {
		case len(rows) == 0:
			rows, rowW = [][]int{{i}}, bw
		case rowW+ui.Width(sep)+bw > w:
			rows, rowW = append(rows, []int{i}), ui.Width(cont)+bw
		default:
			rows[len(rows)-1] = append(rows[len(rows)-1], i)
			rowW += ui.Width(sep) + bw
		}
		g.row[i] = len(rows) - 1
	}
	return rows
}

// drawRow renders one row of boxes as 4 lines.
func (m Model) drawRow(idx []int, first bool, sep, cont string) []string {
	var row [4]strings.Builder
	for k, i := range idx {
		join := sep
		if k == 0 {
			join = cont
			if first {
				join = ""
			}
		}
		drawn := m.geo.drawn[i]
		if i == m.sel {
			drawn = m.draw(m.box(i), m.geo.marks[i], true, m.geo.cw[i])
		}
		for j := range row {
			if j == 1 {
				row[j].WriteString(join)
			} else {
				row[j].WriteString(strings.Repeat(" ", ui.Width(join)))
			}
			row[j].WriteString(drawn[j])
		}
	}
	return []string{row[0].String(), row[1].String(), row[2].String(), row[3].String()}
}

// draw renders a box as 4 lines of content width cw; marks are text in
// the title so that selection, changes, sightings and losses read
// without colour.
func (m Model) draw(b box, mk mark, selected bool, cw int) []string {
	title := boxTitle(b, mk, selected)
	bd := thin
	if selected {
		bd = heavy
	}
	t := ui.Trunc(title, cw-1)
	top := bd.tl + bd.h + t + strings.Repeat(bd.h, max(0, cw+1-ui.Width(t))) + bd.tr
	out := []string{top}
	for i := 0; i < 2; i++ {
		l := ""
		if i < len(b.lines) {
			l = b.lines[i]
		}
		out = append(out, bd.v+" "+ui.Fit(l, cw)+" "+bd.v)
	}
	out = append(out, bd.bl+strings.Repeat(bd.h, cw+2)+bd.br)
	st := m.theme.Dim
	switch {
	case selected:
		st = m.theme.Selected
	case b.bad || mk == markLost:
		st = m.theme.Bad
	case b.changed:
		st = m.theme.Changed
	case mk != markNone:
		st = m.theme.Good
	default:
		return out
	}
	for i := range out {
		out[i] = st.Render(out[i])
	}
	return out
}

func boxTitle(b box, mk mark, selected bool) string {
	var pre []string
	if selected {
		pre = append(pre, "▶")
	}
	if b.changed {
		pre = append(pre, ui.MarkChanged)
	}
	switch mk {
	case markLost:
		pre = append(pre, ui.MarkLost+" lost")
	case markReached:
		pre = append(pre, ui.MarkSeen+" reached")
	case markSeen:
		pre = append(pre, ui.MarkSeen)
	}
	pre = append(pre, b.title)
	return " " + strings.Join(pre, " ") + " "
}

// body returns the drawing's lines [off, off+h) and its total height;
// only rows that show are drawn.
func (m Model) body(off, h int) (lines []string, total int) {
	g := m.geo
	type seg struct {
		start int
		draw  func() []string
	}
	var segs []seg
	y := 0
	for r, idx := range g.chainRows {
		segs = append(segs, seg{y, func() []string { return m.drawRow(idx, r == 0, chainSep, chainCont) }})
		y += 4
	}
	if len(g.backRows) > 0 {
		label := m.theme.Header.Render(" ⤷ " + ui.Count(len(m.backends), "backend") + ":")
		segs = append(segs, seg{y, func() []string { return []string{label} }})
		y++
		for r, idx := range g.backRows {
			segs = append(segs, seg{y, func() []string { return m.drawRow(idx, r == 0, backSep, backCont) }})
			y += 4
		}
	}
	total = y
	for k, s := range segs {
		end := total
		if k+1 < len(segs) {
			end = segs[k+1].start
		}
		if end <= off || s.start >= off+h {
			continue
		}
		for j, l := range s.draw() {
			if y := s.start + j; y >= off && y < off+h {
				lines = append(lines, l)
			}
		}
	}
	return lines, total
}

// selLine is the first line of the selected box in the drawing.
func (m Model) selLine() int {
	if m.sel < len(m.chain) {
		return 4 * m.geo.row[m.sel]
	}
	return 4*len(m.geo.chainRows) + 1 + 4*m.geo.row[m.sel]
}
