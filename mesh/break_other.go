//go:build !linux

package mesh

// NewFaultKernel fails: meshes need Linux namespaces.
func NewFaultKernel(*State) (FaultKernel, error) { return nil, errUnsupported }

func lockFaults(string) (func(), error) { return nil, errUnsupported }
