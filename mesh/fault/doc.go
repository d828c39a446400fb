// Package fault injects faults into a running mesh (`meshtrace mesh break`)
// and undoes them (`mesh repair`), each aimed at one doctor check. It
// works on a mesh the provisioner (package mesh) built, through a Kernel
// split by concern (firewall in both iptables backends, sysctls, links,
// addresses and routes, the overlay's FDB and neighbours, the NIC's
// offloads and tc programs, IPVS, conntrack, traffic, the agent's task and
// DNS servers), each a narrow interface with a fake, and it records every
// change with its exact inverse in the mesh's faults.json, so a repair
// works from any process. A fault is injected on one node (--node), and
// touches that node's namespaces only (and the LAN's or the client's, for
// what plays the world around the node).
//
// Adding a fault is one file named after it, holding its plan function
// (read the state through p.k, then change it in steps with their
// inverses, using the helpers of planner.go, rules.go, lb.go and
// netconf.go), and one entry in the catalogue (catalogue.go): its name,
// the doctor code that must catch it, where, and what a user sees. A
// fault doctor has no detector for yet is Pending, with the Evidence a
// detector should look at; TestPendingFaults checks its symptom until the
// detector lands and the fault joins TestDoctorMatrix. A fault that needs
// a new kind of change adds an operation (ops.go) and the method of its
// concern (kernel.go, the real one in a *_linux.go file, the fake in
// fake_test.go).
package fault
