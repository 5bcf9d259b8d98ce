package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/ring"
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

// deviceDBDir is where a pool keeps its device's database.
func deviceDBDir(pool *blockpool.FilePool) string { return filepath.Join(pool.Dir(), "meta") }

// openDeviceDB opens a device's database, moving its records there from
// the node's database on the first start after an upgrade.
func (n *Node) openDeviceDB(d ring.Device, pool *blockpool.FilePool) (*pebble.DB, error) {
	db, err := metastore.OpenPebble(deviceDBDir(pool), n.log)
	if err != nil {
		return nil, err
	}
	if err := shard.MoveRecords(n.db.Primary(), db, d.ID); err != nil {
		db.Close()
		return nil, fmt.Errorf("move the device's records out of the node's database: %w", err)
	}
	return db, nil
}

// deviceOffline leaves a device offline and says why.
func (n *Node) deviceOffline(ld *localDevice, why string, err error) {
	ld.fault = fmt.Sprintf("%s: %v", why, err)
	n.log.Error("device offline: "+why, "device", ld.name, "err", err)
}

// deviceUnreadable takes a device offline whose records could not all be
// read when the object store started.
func (n *Node) deviceUnreadable(name string, err error) {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	for _, ld := range n.local {
		if ld.name != name || ld.store == nil {
			continue
		}
		n.db.RemoveMirror(name)
		if cerr := ld.close(); cerr != nil {
			n.log.Warn("closing an unreadable device", "device", name, "err", cerr)
		}
		ld.fault = fmt.Sprintf("its records are unreadable: %v", err)
	}
}

// close closes a device's store, volume and database; it is offline after.
func (ld *localDevice) close() error {
	var errs []error
	ld.store = nil
	if ld.vol != nil {
		errs = append(errs, ld.vol.Close())
		ld.vol = nil
	}
	if ld.db != nil {
		errs = append(errs, metastore.CloseFlushed(ld.db))
		ld.db = nil
	}
	return errors.Join(errs...)
}

// localFault says why a local device is offline ("" if it is not, or is
// not local).
func (n *Node) localFault(id uint32) string {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	if ld := n.local[id]; ld != nil && ld.store == nil {
		return ld.fault
	}
	return ""
}

// rebuildDevice starts an offline local device anew: see the comment at
// the top of this file.
func (n *Node) rebuildDevice(id uint32) (admin.RebuildAnswer, error) {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	cur := n.ring.Load()
	i, ok := cur.Index(id)
	if !ok {
		return admin.RebuildAnswer{}, &admin.Error{Status: http.StatusNotFound, Code: "NoSuchDevice", Message: fmt.Sprintf("the ring has no device %d", id)}
	}
	d := cur.Devices[i]
	ld := n.local[id]
	if d.Node != n.cfg.NodeName || ld == nil {
		return admin.RebuildAnswer{}, &admin.Error{Status: http.StatusBadRequest, Code: "NotLocalDevice", Message: fmt.Sprintf("device %s is on node %s; rebuild it there", d.Name, d.Node)}
	}
	if ld.store != nil {
		return admin.RebuildAnswer{}, &admin.Error{Status: http.StatusConflict, Code: "DeviceOnline", Message: fmt.Sprintf("device %s is online; only an offline device (damaged metadata, a volume from elsewhere) is rebuilt", d.Name)}
	}
	if err := ld.close(); err != nil {
		n.log.Warn("closing the device before its rebuild", "device", d.Name, "err", err)
	}
	ans := admin.RebuildAnswer{Device: d.Name}
	dir := deviceDBDir(ld.pool)
	kept, err := metastore.SetAside(dir)
	if err != nil {
		return ans, fmt.Errorf("device %s: move the damaged database aside: %w", d.Name, err)
	}
	ans.Kept = kept
	db, err := metastore.OpenPebble(dir, n.log)
	if err != nil {
		return ans, fmt.Errorf("device %s: new database: %w", d.Name, err)
	}
	vol, err := ld.pool.Open("chunk")
	if errors.Is(err, blockpool.ErrNoSuchVolume) {
		vol, err = ld.pool.Create("chunk", n.cfg.ChunkVolume)
	}
	if err == nil {
		err = shard.Forget(vol, db, id)
		vol.Close()
	}
	db.Close()
	if err != nil {
		return ans, fmt.Errorf("device %s: %w", d.Name, err)
	}
	delete(n.local, id)
	ld, err = n.openDevice(d)
	if err != nil {
		return ans, err
	}
	if ld.store == nil {
		return ans, &admin.Error{Status: http.StatusInternalServerError, Code: "RebuildFailed", Message: fmt.Sprintf("device %s is still offline: %s", d.Name, ld.fault)}
	}
	ans.Generation = ld.store.Generation()
	if err := n.store.SetRing(cur, n.devicesFor(cur)); err != nil {
		return ans, err
	}
	n.log.Warn("device rebuilt empty; its records and shards are refilled from the others", "device", d.Name, "generation", ans.Generation, "kept", ans.Kept)
	ans.Refill = "placement repair started"
	ctx := n.bgCtx
	n.goBackground(func() { n.refill(ctx, d.Name) })
	return ans, nil
}

// refill runs the placement repair that brings a rebuilt device's records
// and shards back, retrying while a rebalance holds it off.
func (n *Node) refill(ctx context.Context, device string) {
	for {
		rep, err := n.store.VerifyPlacement(ctx)
		if err == nil {
			if n.scrub != nil {
				n.scrub.Record(ctx, placementStats(rep))
			}
			n.log.Warn("rebuilt device refilled", "device", device, "report", fmt.Sprintf("%+v", rep))
			return
		}
		n.log.Error("refilling a rebuilt device: retrying in a minute (the periodic placement check also refills it)", "device", device, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}
