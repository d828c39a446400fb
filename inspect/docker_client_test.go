package inspect

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestDockerLiveNoDaemon(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "docker.sock"))
	start := time.Now()
	m, err := DockerLive(context.Background())
	if err != nil || m != nil {
		t.Fatalf("no socket: got %+v, %v; want nil, nil", m, err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("no socket took %v", el)
	}
}

// A socket that accepts and never answers is a daemon that does not
// answer (dockerd busy on a loaded node): an error naming the socket after
// DockerConnectTimeout, never "no Docker".
func TestDockerLiveSilentDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	old := DockerConnectTimeout
	DockerConnectTimeout = 300 * time.Millisecond
	t.Cleanup(func() { DockerConnectTimeout = old })
	start := time.Now()
	m, err := DockerLive(context.Background())
	if err == nil || m != nil {
		t.Fatalf("silent daemon: got %+v, %v; want an error", m, err)
	}
	if !strings.Contains(err.Error(), sock) || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("error %q does not name the socket", err)
	}
	if el := time.Since(start); el < DockerConnectTimeout || el > 2*DockerConnectTimeout+500*time.Millisecond {
		t.Errorf("silent daemon took %v (timeout %v)", el, DockerConnectTimeout)
	}
}

// A socket file nobody listens on (dockerd died) is no daemon, at once.
func TestDockerLiveStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	start := time.Now()
	m, err := DockerLive(context.Background())
	if err != nil || m != nil {
		t.Fatalf("stale socket: got %+v, %v; want nil, nil", m, err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("stale socket took %v", el)
	}
}

func TestDockerLiveBadHost(t *testing.T) {
	t.Setenv("DOCKER_HOST", "no-scheme-here")
	if _, err := DockerLive(context.Background()); err == nil {
		t.Error("malformed DOCKER_HOST: no error")
	}
}

// fakeEngine serves the engine API endpoints Engine uses from the testdata
// JSON, as a worker or a manager.
func fakeEngine(t *testing.T, swarmHeader string) (sock string, paths *[]string) {
	t.Helper()
	nets := readTestdata(t, "networks.json")
	ctrs := readTestdata(t, "containers.json")
	svcs := readTestdata(t, "services.json")
	var netList, ctrList []json.RawMessage
	if err := json.Unmarshal(nets, &netList); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ctrs, &ctrList); err != nil {
		t.Fatal(err)
	}
	byID := func(list []json.RawMessage, key string) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for _, raw := range list {
			var v map[string]any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			out[v[key].(string)] = raw
		}
		return out
	}
	netByID, ctrByID := byID(netList, "Id"), byID(ctrList, "Id")

	var mu sync.Mutex
	var seen []string
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		p := r.URL.Path
		if p == "/_ping" {
			w.Header().Set("Api-Version", "1.47")
			w.Header().Set("Ostype", "linux")
			if swarmHeader != "" {
				w.Header().Set("Swarm", swarmHeader)
			}
			w.Write([]byte("OK"))
			return
		}
		if !strings.HasPrefix(p, "/v1.47/") {
			http.Error(w, `{"message":"unexpected API version in `+p+`"}`, http.StatusBadRequest)
			return
		}
		p = strings.TrimPrefix(p, "/v1.47")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case p == "/networks":
			// The list has no Containers; Engine must inspect each.
			var summaries []map[string]any
			for _, raw := range netList {
				var v map[string]any
				json.Unmarshal(raw, &v)
				delete(v, "Containers")
				summaries = append(summaries, v)
			}
			json.NewEncoder(w).Encode(summaries)
		case strings.HasPrefix(p, "/networks/"):
			raw, ok := netByID[strings.TrimPrefix(p, "/networks/")]
			if !ok {
				http.Error(w, `{"message":"network not found"}`, http.StatusNotFound)
				return
			}
			if r.URL.Query().Get("verbose") != "true" {
				// Like dockerd: Services and Peers only when verbose.
				var v map[string]any
				json.Unmarshal(raw, &v)
				delete(v, "Services")
				delete(v, "Peers")
				raw, _ = json.Marshal(v)
			}
			w.Write(raw)
		case p == "/containers/json":
			var list []map[string]any
			for id := range ctrByID {
				list = append(list, map[string]any{"Id": id})
			}
			// A container that goes away between list and inspect.
			list = append(list, map[string]any{"Id": strings.Repeat("f", 64)})
			json.NewEncoder(w).Encode(list)
		case strings.HasPrefix(p, "/containers/") && strings.HasSuffix(p, "/json"):
			raw, ok := ctrByID[strings.TrimSuffix(strings.TrimPrefix(p, "/containers/"), "/json")]
			if !ok {
				http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
				return
			}
			w.Write(raw)
		case p == "/services":
			if !strings.HasSuffix(swarmHeader, "/manager") {
				http.Error(w, `{"message":"This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state."}`, http.StatusServiceUnavailable)
				return
			}
			w.Write(svcs)
		default:
			http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
		}
	})
	sock = filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock, &seen
}

func TestDockerLiveManager(t *testing.T) {
	sock, _ := fakeEngine(t, "active/manager")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	d, err := ReadDockerLive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d == nil {
		t.Fatal("daemon answered but got nil")
	}
	if len(d.Notes) != 0 {
		t.Errorf("notes = %q", d.Notes)
	}
	if diff := cmpMeta(t, d); diff != "" {
		t.Errorf("meta (-want +got):\n%s", diff)
	}
}

func TestDockerLiveWorker(t *testing.T) {
	sock, seen := fakeEngine(t, "active/worker")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	d, err := ReadDockerLive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || len(d.Networks) != 3 || len(d.Containers) != 1 {
		t.Fatalf("worker: got %+v", d)
	}
	if d.Services != nil {
		t.Errorf("worker listed services: %+v", d.Services)
	}
	if len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "not a swarm manager (swarm state active)") {
		t.Errorf("notes = %q", d.Notes)
	}
	for _, p := range *seen {
		if strings.HasSuffix(p, "/services") {
			t.Errorf("asked a worker for services: %s", p)
		}
	}
}

func TestDockerLiveNoSwarmHeader(t *testing.T) {
	// An engine that does not say its swarm role: services are tried, and
	// the refusal becomes a note.
	sock, _ := fakeEngine(t, "")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	d, err := ReadDockerLive(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Services != nil || len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "not a swarm manager") {
		t.Errorf("services %v, notes %q", d.Services, d.Notes)
	}
}

func cmpMeta(t *testing.T, d *DockerData) string {
	t.Helper()
	return cmp.Diff(wantTestdataMeta, d.Meta(), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}))
}
