package tui

import (
	"context"
	"errors"
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/meshtrace/meshtrace/topology"
	"github.com/meshtrace/meshtrace/tui/delta"
	"github.com/meshtrace/meshtrace/tui/ports"
)

// loadTimeout bounds one reading of the model.
const loadTimeout = 30 * time.Second

// loadedMsg is a finished reading with everything derived from it,
// computed off the UI goroutine.
type loadedMsg struct {
	model   *topology.Model
	entries []ports.Entry
	changes delta.Set
	// entry is the query the path was computed for (nil: none).
	entry   *ports.Entry
	path    *topology.Path
	pathErr error
	err     error
	at      time.Time
}

type refreshMsg struct{}

// loadCmd re-reads the model in the background: a command runs in its
// own goroutine, so input is never blocked. The previous reading is only
// read (models are not changed once built).
func (m Model) loadCmd() tea.Cmd {
	old, load, now := m.model, m.cfg.Load, m.cfg.Now
	var entry *ports.Entry
	if m.entry != nil {
		e := *m.entry
		entry = &e
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
		defer cancel()
		tm, err := load(ctx)
		if err != nil {
			return loadedMsg{err: err, at: now()}
		}
		msg := loadedMsg{model: tm, entries: ports.Build(tm), changes: delta.Compare(old, tm), at: now(), entry: entry}
		if entry != nil {
			msg.path, msg.pathErr = findPath(tm, entry.Query)
		}
		return msg
	}
}

func findPath(tm *topology.Model, q topology.Query) (*topology.Path, error) {
	p, err := topology.FindPath(tm, q)
	var np *topology.NotPublishedError
	if errors.As(err, &np) {
		return nil, fmt.Errorf("%s (any more)", np.Error())
	}
	return p, err
}

// onLoaded applies a reading and schedules the next one.
func (m Model) onLoaded(msg loadedMsg) (Model, tea.Cmd) {
	m.loading = false
	var next tea.Cmd
	if m.cfg.Interval > 0 {
		next = tea.Tick(m.cfg.Interval, func(time.Time) tea.Msg { return refreshMsg{} })
	}
	if msg.err != nil {
		m.loadErr = msg.err
		return m, next
	}
	return m.apply(msg), next
}

func (m Model) apply(msg loadedMsg) Model {
	m.model, m.changes, m.loadedAt, m.loadErr = msg.model, msg.changes, msg.at, nil
	m.topo = m.topo.SetModel(msg.model, msg.changes)
	m.ports = m.ports.SetEntries(msg.entries)
	m.pub = m.pub.SetEntries(msg.entries)
	if m.entry != nil && msg.entry != nil && sameQuery(m.entry.Query, msg.entry.Query) {
		m.path = m.path.SetPath(msg.model, msg.path, msg.pathErr, msg.changes)
	}
	return m.resize() // the published ports' height follows their count
}

func sameQuery(a, b topology.Query) bool {
	return a.Proto == b.Proto && a.Port == b.Port && a.VIP == b.VIP && a.Netns == b.Netns
}

func (m Model) refresh() (Model, tea.Cmd) {
	if m.loading || m.cfg.Load == nil {
		return m, nil
	}
	m.loading = true
	return m, m.loadCmd()
}
