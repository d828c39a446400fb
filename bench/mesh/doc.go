// Package meshbench times `meshtrace mesh up` + `down` (netlink handles per
// namespace, one iptables-restore per namespace, namespaces built in
// parallel) against shell-mesh.sh, which builds the same mesh with one
// `ip`/`iptables` command per object, in the same run, and reports the
// ratio. TestShellEquivalent checks that both build the same rules,
// addresses and overlay entries, so the ratio compares like with like. It
// needs root.
//
//	go test ./bench/mesh -run TestUpDownSpeed -v         # one timed round, logged
package meshbench
