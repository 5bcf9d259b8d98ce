package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/strata-storage/strata/s3api/sigv4"
)

// adminDo sends a signed admin request to a running node.
func adminDo(t *testing.T, n *Node, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.AdminAddr()+"/admin/v1/"+path, bytes.NewReader([]byte(body)))
	if err := sigv4.Sign(req, n.Root.AccessKey, n.Root.SecretKey, "us-east-1", []byte(body), time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct{ Code string }
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Code
}

func TestVolumeAdminRefusesBadRequests(t *testing.T) {
	n, err := Start(testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if st, _ := adminDo(t, n, "POST", "volumes", `{"name":"vol","size":16777216}`); st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}
	if st, _ := adminDo(t, n, "POST", "volumes/vol/snapshots", `{"name":"s1"}`); st != http.StatusCreated {
		t.Fatalf("snapshot: %d", st)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"bad name", "POST", "volumes", `{"name":"Bad/Name","size":4096}`, 400, "InvalidArgument"},
		{"zero size", "POST", "volumes", `{"name":"z","size":0}`, 400, "InvalidArgument"},
		{"huge size", "POST", "volumes", `{"name":"z","size":9223372036854775807}`, 400, "InvalidArgument"},
		{"negative replicas", "POST", "volumes", `{"name":"z","size":4096,"replicas":-1}`, 400, "InvalidArgument"},
		{"more replicas than zones", "POST", "volumes", `{"name":"z","size":4096,"replicas":2}`, 409, "PlacementFailed"},
		{"unknown node", "POST", "volumes", `{"name":"z","size":4096,"nodes":["elsewhere"]}`, 409, "PlacementFailed"},
		{"unknown field", "POST", "volumes", `{"name":"z","size":4096,"replica":1}`, 400, "InvalidArgument"},
		{"not JSON", "POST", "volumes", `{`, 400, "InvalidArgument"},
		{"name taken", "POST", "volumes", `{"name":"vol","size":4096}`, 409, "VolumeExists"},
		{"get unknown", "GET", "volumes/nope", ``, 404, "NoSuchVolume"},
		{"delete unknown", "DELETE", "volumes/nope", ``, 404, "NoSuchVolume"},
		{"shrink", "PUT", "volumes/vol/size", `{"size":4096}`, 400, "InvalidArgument"},
		{"resize unknown", "PUT", "volumes/nope/size", `{"size":4096}`, 404, "NoSuchVolume"},
		{"snapshot name taken", "POST", "volumes/vol/snapshots", `{"name":"s1"}`, 409, "VolumeExists"},
		{"bad snapshot name", "POST", "volumes/vol/snapshots", `{"name":"../x"}`, 400, "InvalidArgument"},
		{"snapshot of unknown", "POST", "volumes/nope/snapshots", `{"name":"s"}`, 404, "NoSuchVolume"},
		{"restore unknown snapshot", "POST", "volumes/vol/snapshots/s9/restore", ``, 404, "NoSuchSnapshot"},
		{"delete unknown snapshot", "DELETE", "volumes/vol/snapshots/s9", ``, 404, "NoSuchSnapshot"},
		{"clone from unknown snapshot", "POST", "volumes/vol/clone", `{"name":"c","snapshot":"s9"}`, 404, "NoSuchSnapshot"},
		{"clone onto a taken name", "POST", "volumes/vol/clone", `{"name":"vol","snapshot":"s1"}`, 409, "VolumeExists"},
		{"discard while not primary", "POST", "volumes/vol/discard/node1", ``, 400, "InvalidArgument"},
		{"secondary while not primary", "DELETE", "volumes/vol/primary", ``, 400, "InvalidArgument"},
		{"unknown operation", "POST", "volumes/vol/explode", ``, 404, "NoSuchAdminOperation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, code := adminDo(t, n, c.method, c.path, c.body)
			if st != c.status || code != c.code {
				t.Fatalf("%s %s: %d %s, want %d %s", c.method, c.path, st, code, c.status, c.code)
			}
		})
	}
	// Nothing was half-applied: one volume, one snapshot, size unchanged.
	info, err := n.Volumes().Info(context.Background(), "vol")
	if err != nil || info.Size != 16<<20 || len(info.Snapshots) != 1 {
		t.Fatalf("after the refusals: %+v %v", info, err)
	}
	if recs, _ := n.Volumes().Records(context.Background()); len(recs) != 1 {
		t.Fatalf("%d volume records", len(recs))
	}
}
