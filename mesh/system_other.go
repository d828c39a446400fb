//go:build !linux

package mesh

import (
	"context"
	"errors"
	"io"
)

// NewSystem returns a System that fails: meshes need Linux namespaces.
func NewSystem() System { return unsupported{} }

var errUnsupported = errors.New("mesh: network namespaces need Linux")

type unsupported struct{}

func (unsupported) HasIPVS() (bool, string)                { return false, errUnsupported.Error() }
func (unsupported) CreateNetns(string) error               { return errUnsupported }
func (unsupported) Devices(*NetnsSpec) error               { return errUnsupported }
func (unsupported) Veths(*NetnsSpec) error                 { return errUnsupported }
func (unsupported) Configure(*NetnsSpec) error             { return errUnsupported }
func (unsupported) Firewall(string, string) error          { return errUnsupported }
func (unsupported) IPVS(string, []IPVSSpec) error          { return errUnsupported }
func (unsupported) StartAgent(AgentSpec) (int, error)      { return 0, errUnsupported }
func (unsupported) Remove(string, string) (Removed, error) { return Removed{}, errUnsupported }

// needLinux: a mesh is made of Linux network namespaces.
func needLinux() error { return errUnsupported }

// Exec fails: there are no mesh namespaces to run in.
func Exec(string, string, string, []string, io.Reader, io.Writer, io.Writer) (int, error) {
	return 0, errUnsupported
}

// RunAgent fails: there are no task namespaces to serve in.
func RunAgent(context.Context, string, string, io.WriteCloser) error { return errUnsupported }
