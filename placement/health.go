package placement

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Health reports per-device state; 503 when fewer devices than a write
// quorum are online.
func (pl *Controller) Health(w http.ResponseWriter, _ *http.Request) {
	type dev struct {
		Name   string `json:"name"`
		Online bool   `json:"online"`
		Full   bool   `json:"full,omitempty"`  // down to its space reserve: writes refused
		Fault  string `json:"fault,omitempty"` // why a local device is offline
	}
	out := struct {
		Status  string `json:"status"`
		EC      string `json:"ec"`
		Devices []dev  `json:"devices"`
	}{}
	r := pl.Current()
	out.EC = fmt.Sprintf("%d+%d", r.K, r.M)
	online := 0
	var fullDevs []string
	local := pl.devs.Snapshot()
	for i, d := range pl.DevicesFor(r) {
		up := d != nil && d.Online()
		full := false
		ld, isLocal := local[r.Devices[i].ID]
		if ld.Space != nil {
			full = ld.Space.Full()
		}
		if full {
			fullDevs = append(fullDevs, r.Devices[i].Name)
		}
		fault := ""
		if isLocal && ld.Store == nil {
			fault = ld.Fault
		}
		out.Devices = append(out.Devices, dev{r.Devices[i].Node + "/" + r.Devices[i].Name, up, full, fault})
		if up {
			online++
		}
	}
	need := r.K
	if r.K == r.M {
		need++
	}
	status := http.StatusOK
	out.Status = "ok"
	switch {
	case online < need:
		out.Status, status = "degraded: below write quorum", http.StatusServiceUnavailable
	case len(fullDevs) > 0:
		// Reads and deletes are served: the node is up, but says why
		// writes fail.
		out.Status = "degraded: disk space down to the reserve, writes refused on " + strings.Join(fullDevs, ", ")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(out)
}
