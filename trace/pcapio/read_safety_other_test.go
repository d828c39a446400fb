//go:build !unix

package pcapio

import "errors"

func mkfifo(string) error { return errors.New("no FIFOs here") }
