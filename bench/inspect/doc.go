// Package inspectbench times meshtrace's live reader on a Docker-shaped
// node of 200 namespaces (internal/dockerns: host, ingress_sbox, the
// ingress overlay and 197 tasks with 3 links and 15 rules each) against
// the shell loop an operator would type (operator-loop.sh), in the same
// run, and reports the ratios. It needs root.
//
//	go test ./bench/inspect -run TestLiveSpeed -v        # one timed round, logged
//	go test ./bench/inspect -run '^$' -bench BenchmarkLive
package inspectbench
