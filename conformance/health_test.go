package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// probe is one GET of a node's admin listener: status and JSON body.
func probe(t *testing.T, admin, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + admin + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", admin, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("GET %s%s: %v: %s", admin, path, err, b)
	}
	return resp.StatusCode, out
}

// seriesValue is the value of one series in a node's /metrics (labels as
// Prometheus writes them, in name order), or -1 when it is absent.
func seriesValue(t *testing.T, admin, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := readAllString(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// eventually retries check until it returns "" or the time is up.
func eventually(t *testing.T, within time.Duration, what string, check func() string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if last = check(); last == "" {
			return
		}
	}
	t.Fatalf("%s: %s", what, last)
}

// Issue 19: a node of a cluster stops. /healthz on the others says
// degraded with the reason, /livez and /readyz stay ok, and the replica
// metrics of a volume no client has attached show the missing replica on
// another node; once it is back, everything is ok again.
func TestHealthTellsOfANodeLoss(t *testing.T) {
	t.Parallel()
	requireTool(t, "etcd", "etcd")
	c := startCluster(t, 3, 3, "2+1")
	c.cli(t, c.nodes[0], "volume", "create", "quiet", "16MiB", "--replicas", "3")
	upToDate := func(on *clusterNode, replica string) float64 {
		return seriesValue(t, on.admin, fmt.Sprintf(`strata_volume_replica_up_to_date{node=%q,volume="quiet"}`, replica))
	}
	allOK := func() string {
		for _, nd := range c.nodes {
			if code, h := probe(t, nd.admin, "/healthz"); code != 200 || h["status"] != "ok" {
				return fmt.Sprintf("%s /healthz: %d %v", nd.name, code, h)
			}
			for _, replica := range []string{"node1", "node2", "node3"} {
				if v := upToDate(nd, replica); v != 1 {
					return fmt.Sprintf("%s: strata_volume_replica_up_to_date of %s's replica = %v", nd.name, replica, v)
				}
			}
		}
		return ""
	}
	eventually(t, 60*time.Second, "a new cluster with its volume", allOK)

	down := c.nodes[2]
	c.kill(down)
	for _, nd := range c.nodes[:2] {
		eventually(t, 30*time.Second, nd.name+" after node3 stopped", func() string {
			code, h := probe(t, nd.admin, "/healthz")
			reasons, _ := json.Marshal(h["reasons"])
			if code != 200 || h["status"] != "degraded" || !strings.Contains(string(reasons), "node3") ||
				!strings.Contains(string(reasons), `"component":"devices"`) || !strings.Contains(string(reasons), `"component":"volumes"`) {
				return fmt.Sprintf("/healthz: %d %v", code, h)
			}
			if v := upToDate(nd, "node3"); v != 0 {
				return fmt.Sprintf("strata_volume_replica_up_to_date of node3's replica = %v (no client attached)", v)
			}
			if v := seriesValue(t, nd.admin, "strata_volumes_degraded"); v != 1 {
				return fmt.Sprintf("strata_volumes_degraded = %v", v)
			}
			return ""
		})
		if code, l := probe(t, nd.admin, "/livez"); code != 200 || l["status"] != "alive" {
			t.Fatalf("%s /livez with node3 down: %d %v", nd.name, code, l)
		}
		if code, r := probe(t, nd.admin, "/readyz"); code != 200 || r["status"] != "ready" {
			t.Fatalf("%s /readyz with node3 down: %d %v", nd.name, code, r)
		}
	}
	_, h := probe(t, c.nodes[0].admin, "/healthz")
	t.Logf("node1 /healthz with node3 down: %v", h["reasons"])

	c.launch(t, down)
	c.waitUp(t, down)
	eventually(t, 90*time.Second, "the cluster after node3 returned", allOK)
}
