package node

import (
	"context"
	"net/http"
	"testing"
)

// Bad rebalance requests get their error and change nothing: the ring
// version stays where it was.
func TestRebalanceAdminRefusesBadRequests(t *testing.T) {
	n, err := Start(testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	version := n.CurrentRing().Version
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"status before any", "GET", "rebalance", ``, 404, "NoRebalance"},
		{"pause without a job", "POST", "rebalance/pause", ``, 404, "NoRebalance"},
		{"cancel without a job", "POST", "rebalance/cancel", ``, 409, "RebalanceNotActive"},
		{"limit without a job", "PUT", "rebalance/limit", `{"Limit":1048576}`, 409, "RebalanceNotActive"},
		{"negative limit", "POST", "rebalance/start", `{"Limit":-1}`, 400, "InvalidArgument"},
		{"zero concurrency", "POST", "rebalance/start", `{"Concurrency":0}`, 400, "InvalidArgument"},
		{"unknown field", "POST", "rebalance/start", `{"Limt":5}`, 400, "InvalidArgument"},
		{"balanced ring", "POST", "rebalance/start", ``, 409, "NothingToMove"},
		{"unknown zone", "POST", "zones/rack9/fail", ``, 404, "NoSuchDevice"},
		{"unknown node", "POST", "nodes/elsewhere/drain", ``, 404, "NoSuchDevice"},
		// Failing the only zone leaves no device for the layout.
		{"fail every device", "POST", "zones/zone1/fail", ``, 409, "LayoutDoesNotFit"},
		{"drain every device", "POST", "zones/zone1/drain", ``, 409, "LayoutDoesNotFit"},
		{"halt not allowed", "POST", "node/halt", ``, 403, "HaltDisabled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, code := adminDo(t, n, c.method, c.path, c.body)
			if st != c.status || code != c.code {
				t.Fatalf("%s %s: %d %s, want %d %s", c.method, c.path, st, code, c.status, c.code)
			}
		})
	}
	if v := n.CurrentRing().Version; v != version {
		t.Fatalf("refused requests changed the ring: v%d -> v%d", version, v)
	}
	if st, _ := adminDo(t, n, "POST", "rebalance/plan", `{"Limit":1048576}`); st != http.StatusOK {
		t.Fatalf("plan: %d", st)
	}
}
