package probe

import "github.com/meshtrace/meshtrace/internal/netnsx"

// inNetns runs fn inside the namespace at path ("" = the caller's).
func inNetns(path string, fn func() error) error { return netnsx.Do(path, fn) }
