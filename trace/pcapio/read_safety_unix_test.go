//go:build unix

package pcapio

import "syscall"

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }
