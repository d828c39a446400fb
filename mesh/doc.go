// Package mesh is meshtrace's built-in provisioner: it builds a routing
// mesh shaped like a Docker Swarm's out of network namespaces, runs the
// tasks' servers in one agent process, and tears all of it down again. The
// real root namespace is never touched: every link, rule and sysctl the
// mesh writes lives in namespaces it created, pinned by bind mounts under
// /run/meshtrace/NAME:
//
//	state.json agent.pid agent.log agent.ready
//	lan                     underlay: bridge lanbr, 192.168.77.0/24
//	client                  eth0 192.168.77.9 on the LAN (an outside user)
//	node0/host              plays the node's root netns: eth0 192.168.77.10,
//	                        docker_gwbridge 172.18.0.1/16, DOCKER-INGRESS,
//	                        route_localnet, ip_forward; the VXLAN socket;
//	                        the gossip port, tcp/udp 7946 (the agent's)
//	node0/netns/            plays /run/docker/netns:
//	  ingress_sbox          eth0 10.0.0.2/24 (+ the service VIPs /32) on the
//	                        overlay, eth1 172.18.0.2/16 on docker_gwbridge;
//	                        mangle MARK per published port and VIP, IPVS FWM
//	                        (or its iptables emulation), SNAT
//	  1-<10 char id>        the ingress overlay: br0 10.0.0.1/24 + vxlan0
//	                        (VNI 4096, port 4789, static FDB/neighbours for
//	                        every remote endpoint), one veth port per
//	                        local endpoint, MTU 1450
//	  <12 hex>              one per task: eth0 10.0.0.N/24 (MTU 1450),
//	                        eth1 172.18.0.N/16, REDIRECT published->target
//	                        and the ingress filter (none for a dnsrr
//	                        service's task); Docker's embedded DNS server:
//	                        DOCKER_OUTPUT DNATs 127.0.0.11:53 to the
//	                        task's own resolver ports, where the agent
//	                        answers service names (VIP, or the tasks for
//	                        dnsrr), tasks.NAME and task names
//
// Up validates and plans everything first (Plan, NetnsSpec: pure data),
// then builds every namespace through a System (the kernel: rtnetlink
// handles per namespace, one iptables-restore per namespace; tests use a
// fake), namespaces in parallel, each as soon as the ones it hangs off
// exist (see build); any failure rolls back. Down finds
// everything by the directory's mounts and the agent's command line, so it
// works without the state file, after `kill -9` and after a half-finished
// Up.
//
// Faults are injected into a running mesh by package mesh/fault, which
// talks to the agent through State.SetTaskMode; requests go through the
// probe client (internal/probe, see Ask). Off Linux the package builds,
// and everything that needs namespaces says so.
package mesh
