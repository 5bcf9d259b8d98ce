package placement

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/health"
)

// HealthSource is the object store's part of /healthz: every ring device
// (online, full, why a local one is offline), the nodes without a
// heartbeat, disks near their reserve and objects still owed repairs.
// Fewer devices online than a write quorum is critical (writes fail); any
// device down, a full disk or owed repairs is degraded (everything is
// served, with less redundancy or room than it should have).
func (pl *Controller) HealthSource(ctx context.Context) ([]health.Reason, map[string]any) {
	type dev struct {
		Name   string `json:"name"`
		Online bool   `json:"online"`
		Full   bool   `json:"full,omitempty"`  // down to its space reserve: writes refused
		Fault  string `json:"fault,omitempty"` // why a local device is offline
	}
	var reasons []health.Reason
	add := func(sev, comp, format string, args ...any) {
		reasons = append(reasons, health.Reason{Severity: sev, Component: comp, Message: fmt.Sprintf(format, args...)})
	}
	r := pl.Current()
	devs := []dev{}
	online := 0
	var down, full []string
	local := pl.devs.Snapshot()
	for i, d := range pl.DevicesFor(r) {
		rd := r.Devices[i]
		name := rd.Node + "/" + rd.Name
		up := d != nil && d.Online()
		ld, isLocal := local[rd.ID]
		isFull := ld.Space != nil && ld.Space.Full()
		fault := ""
		if isLocal && ld.Store == nil {
			fault = ld.Fault
		}
		devs = append(devs, dev{name, up, isFull, fault})
		switch {
		case up:
			online++
		case fault != "":
			down = append(down, name+" ("+fault+")")
		default:
			down = append(down, name)
		}
		if isFull {
			full = append(full, name)
		}
	}
	need := r.K
	if r.K == r.M {
		need++
	}
	switch {
	case online < need:
		add(health.Critical, "devices", "%d of %d devices online, below the write quorum of %d (EC %d+%d): writes fail; down: %s",
			online, len(devs), need, r.K, r.M, strings.Join(down, ", "))
	case len(down) > 0:
		add(health.Degraded, "devices", "%d of %d devices down, objects with shards on them are below full redundancy: %s",
			len(down), len(devs), strings.Join(down, ", "))
	}
	if len(full) > 0 {
		add(health.Degraded, "disks", "disk space down to the reserve, writes refused on %s", strings.Join(full, ", "))
	}
	for id, ld := range local {
		if ld.Space == nil || ld.Space.Full() {
			continue
		}
		if total, free := ld.Space.Space(); total > 0 && free < total/10 {
			add(health.Degraded, "disks", "device %s (id %d): %d%% free", ld.Name, id, free*100/total)
		}
	}
	if pl.clustered() {
		if members, err := cluster.ListMembers(ctx, pl.etcd); err != nil {
			add(health.Degraded, "nodes", "cluster members unknown: %v", err)
		} else {
			for _, m := range members {
				if m.State != "up" {
					add(health.Degraded, "nodes", "node %s (zone %s) %s, last heartbeat %s ago", m.Name, m.Zone, m.State,
						time.Since(m.Heartbeat).Round(time.Second))
				}
			}
		}
	}
	if pl.store != nil {
		if n, err := pl.store.PendingHints(ctx); err == nil && n > 0 {
			add(health.Degraded, "objects", "%d objects written while a device was down still owe it their shards (repairs queued)", n)
		}
	}
	return reasons, map[string]any{"ec": fmt.Sprintf("%d+%d", r.K, r.M), "devices": devs}
}

// Ready is nil once the node has a ring in force and its object store.
func (pl *Controller) Ready(context.Context) error {
	if pl.ring.Load() == nil || pl.store == nil {
		return fmt.Errorf("the ring is not in force yet")
	}
	return nil
}
