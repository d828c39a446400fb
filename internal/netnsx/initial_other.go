//go:build !linux

package netnsx

// InitialPath is "" off Linux: there are no network namespaces to enter.
func InitialPath() string { return "" }
