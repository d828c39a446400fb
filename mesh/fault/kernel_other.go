//go:build !linux

package fault

import (
	"errors"

	"github.com/meshtrace/meshtrace/mesh"
)

var errUnsupported = errors.New("mesh break: meshes need Linux network namespaces")

// NewKernel fails: meshes need Linux namespaces.
func NewKernel(*mesh.State) (*Kernel, error) { return nil, errUnsupported }

func lockFaults(string) (func(), error) { return nil, errUnsupported }
