package devices

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/ring"
)

// Rebuild starts an offline local device anew: the damaged database is
// set aside (pools/NAME/meta.damaged-TIME), the device opens empty with a
// new volume generation, and the caller refills its records and shards
// with a placement repair. An online device, or another node's, is
// refused.
func (s *Set) Rebuild(d ring.Device) (admin.RebuildAnswer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	l := s.devs[d.ID]
	if d.Node != s.cfg.Node || l == nil {
		return admin.RebuildAnswer{}, &admin.Error{Status: http.StatusBadRequest, Code: admin.CodeNotLocalDevice, Message: fmt.Sprintf("device %s is on node %s; rebuild it there", d.Name, d.Node)}
	}
	if l.store != nil {
		return admin.RebuildAnswer{}, &admin.Error{Status: http.StatusConflict, Code: "DeviceOnline", Message: fmt.Sprintf("device %s is online; only an offline device (damaged metadata, a volume from elsewhere) is rebuilt", d.Name)}
	}
	if err := l.close(); err != nil {
		s.cfg.Log.Warn("closing the device before its rebuild", "device", d.Name, "err", err)
	}
	ans := admin.RebuildAnswer{Device: d.Name}
	dir := dbDir(l.pool)
	kept, err := metastore.SetAside(dir)
	if err != nil {
		return ans, fmt.Errorf("device %s: move the damaged database aside: %w", d.Name, err)
	}
	ans.Kept = kept
	db, err := metastore.OpenPebbleWith(dir, s.cfg.Log, s.cache())
	if err != nil {
		return ans, fmt.Errorf("device %s: new database: %w", d.Name, err)
	}
	vol, err := l.pool.Open("chunk")
	if errors.Is(err, blockpool.ErrNoSuchVolume) {
		vol, err = l.pool.Create("chunk", s.cfg.ChunkVolume)
	}
	if err == nil {
		err = shard.Forget(vol, db, d.ID)
		vol.Close()
	}
	db.Close()
	if err != nil {
		return ans, fmt.Errorf("device %s: %w", d.Name, err)
	}
	delete(s.devs, d.ID)
	if err := s.open(d); err != nil {
		return ans, err
	}
	l = s.devs[d.ID]
	if l.store == nil {
		return ans, &admin.Error{Status: http.StatusInternalServerError, Code: "RebuildFailed", Message: fmt.Sprintf("device %s is still offline: %s", d.Name, l.fault)}
	}
	ans.Generation = l.store.Generation()
	return ans, nil
}
