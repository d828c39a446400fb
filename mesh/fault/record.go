package fault

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/meshtrace/meshtrace/mesh"
)

// faultsFile records the faults injected into a mesh, with the exact steps
// that undo them, so `mesh repair` works from any process.
const faultsFile = "faults.json"

// Fault is one injected fault as recorded in faults.json.
type Fault struct {
	ID      int    `json:"id"`
	Kind    string `json:"fault"`
	Node    string `json:"node"`
	Service string `json:"service,omitempty"`
	Task    string `json:"task,omitempty"`
	// Detail says exactly what was changed.
	Detail string `json:"detail"`
	// Code, Netns and Port are the finding doctor must report: the
	// namespace as doctor names it (host, ingress_sbox, a task's netns
	// file, 1-<overlay id>) and the published port ("tcp/8080") when
	// the finding is about one.
	Code  string `json:"code"`
	Netns string `json:"netns"`
	Port  string `json:"port,omitempty"`
	// ClientPort is the client's source port of stale-conntrack's
	// datagram: datagrams from it still follow the stale entry.
	ClientPort int `json:"client_port,omitempty"`
	// Address is an address the fault added: subnet-overlap's LAN host
	// (on the client) in the network that overlaps the ingress,
	// vtep-source's second address of the node.
	Address netip.Addr `json:"address,omitzero"`
	Time    time.Time  `json:"time"`
	Steps   []Step     `json:"steps"`
}

// Step is one change and what undoes it exactly.
type Step struct {
	Do   Action   `json:"do"`
	Undo []Action `json:"undo"`
}

// faultLog is faults.json.
type faultLog struct {
	NextID int     `json:"next_id"`
	Faults []Fault `json:"faults"`
}

func loadFaultLog(dir string) (*faultLog, error) {
	b, err := os.ReadFile(filepath.Join(dir, faultsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &faultLog{NextID: 1}, nil
	}
	if err != nil {
		return nil, err
	}
	var l faultLog
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, faultsFile), err)
	}
	if l.NextID < 1 {
		l.NextID = 1
	}
	return &l, nil
}

func (l *faultLog) save(dir string) error {
	path := filepath.Join(dir, faultsFile)
	if len(l.Faults) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return mesh.WriteFile(path, append(b, '\n'))
}

// lockedLog takes mesh st's fault lock (one break or repair at a time)
// and reads its faults.json; unlock when done.
func lockedLog(st *mesh.State) (log *faultLog, unlock func(), err error) {
	if unlock, err = lockFaults(st.Dir); err != nil {
		return nil, nil, fmt.Errorf("mesh %s: %w", st.Name, err)
	}
	if log, err = loadFaultLog(st.Dir); err != nil {
		unlock()
		return nil, nil, fmt.Errorf("mesh %s: %w", st.Name, err)
	}
	return log, unlock, nil
}

// Faults returns the faults injected into mesh name, oldest first.
func Faults(runDir, name string) ([]Fault, error) {
	st, err := mesh.Load(runDir, name)
	if err != nil {
		return nil, err
	}
	l, err := loadFaultLog(st.Dir)
	if err != nil {
		return nil, fmt.Errorf("mesh %s: %w", name, err)
	}
	return l.Faults, nil
}
