package placement

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/strata-storage/strata/admin"
)

// Device metadata: each local device keeps its records in its own pebble
// database (pools/NAME/meta), beside its chunk volume, and a copy of the
// node's metadata. A device whose database cannot be opened or read
// through is offline with the reason shown in /healthz; the rest serve
// (erasure coding covers it). Rebuilding it (POST
// /admin/v1/ring/devices/ID/rebuild, `strata ring rebuild-device ID`)
// sets the damaged database aside, starts the device empty with a new
// volume generation, and refills its records and shards from the other
// devices with a placement repair.

// rebuildDevice starts an offline local device anew: see the comment at
// the top of this file.
func (pl *Controller) rebuildDevice(id uint32) (admin.RebuildAnswer, error) {
	pl.ringMu.Lock()
	defer pl.ringMu.Unlock()
	cur := pl.ring.Load()
	i, ok := cur.Index(id)
	if !ok {
		return admin.RebuildAnswer{}, &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoSuchDevice, Message: fmt.Sprintf("the ring has no device %d", id)}
	}
	d := cur.Devices[i]
	ans, err := pl.devs.Rebuild(d)
	if err != nil {
		return ans, err
	}
	if err := pl.store.SetRing(cur, pl.DevicesFor(cur)); err != nil {
		return ans, err
	}
	pl.log.Warn("device rebuilt empty; its records and shards are refilled from the others", "device", d.Name, "generation", ans.Generation, "kept", ans.Kept)
	ans.Refill = "placement repair started"
	ctx := pl.bgCtx
	pl.goBackground(func() { pl.refill(ctx, d.Name) })
	return ans, nil
}

// refill runs the placement repair that brings a rebuilt device's records
// and shards back, retrying while a rebalance holds it off.
func (pl *Controller) refill(ctx context.Context, device string) {
	for {
		rep, err := pl.store.VerifyPlacement(ctx)
		if err == nil {
			if pl.cfg.Record != nil {
				pl.cfg.Record(ctx, rep)
			}
			pl.log.Warn("rebuilt device refilled", "device", device, "report", fmt.Sprintf("%+v", rep))
			return
		}
		pl.log.Error("refilling a rebuilt device: retrying in a minute (the periodic placement check also refills it)", "device", device, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}
