// Package inspectbench times meshtrace's live reader on Docker-shaped
// nodes (internal/dockerns: host, ingress_sbox, the ingress overlay and
// tasks with 3 links and 15 rules each) of 200 and 2,000 namespaces,
// against the shell loop an operator would type (operator-loop.sh) and
// against the floor (Floor: setns and the reader's kernel requests,
// nothing decoded), in the same run. scripts/bench prints its lines
// (Lines); the tests run the same code. It needs root.
//
//	go test ./bench/inspect -run TestLiveSpeed -v        # the inspect-200 line, logged
//	go test ./bench/inspect -run '^$' -bench BenchmarkLive
package inspectbench
