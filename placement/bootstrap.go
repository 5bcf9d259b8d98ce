package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/ring"
)

// Layout is how a first ring is built: its erasure layout ("" is 2+2) and
// partition power; a single node's also its region, name and pool count.
type Layout struct {
	EC        string
	PartPower uint8
	Region    string
	Node      string
	Pools     int
}

// erasure is the layout's K and M (2+2 when none is given).
func (l Layout) erasure() (k, m int, err error) {
	if l.EC == "" {
		return 2, 2, nil
	}
	return ring.ParseEC(l.EC)
}

// OpenLocal loads a single node's ring from its data dir, or builds one
// for a new data dir: l.Pools devices of l.Node in one zone.
func OpenLocal(dataDir string, l Layout) (*ring.Ring, error) {
	path := filepath.Join(dataDir, "ring")
	r, err := ring.Load(path)
	if err == nil {
		if l.EC != "" {
			k, m, err := ring.ParseEC(l.EC)
			if err != nil {
				return nil, err
			}
			if k != r.K || m != r.M {
				return nil, fmt.Errorf("this data dir holds a ring with EC %d+%d; it cannot be changed to %d+%d in place", r.K, r.M, k, m)
			}
		}
		return r, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, m, err := l.erasure()
	if err != nil {
		return nil, err
	}
	var devs []ring.Device
	for i := 0; i < l.Pools; i++ {
		devs = append(devs, ring.Device{ID: uint32(i), Region: l.Region, Zone: "zone1", Node: l.Node, Name: fmt.Sprintf("pool%d", i), Weight: 1})
	}
	r, err = ring.Build(devs, l.PartPower, k, m)
	if err != nil {
		return nil, fmt.Errorf("%w (add pools with --pools, or pick a smaller layout)", err)
	}
	if err := r.Save(path); err != nil {
		return nil, err
	}
	return r, nil
}

// ClusterRing waits for the cluster's ring in etcd, building it from the
// members once size nodes are up if nobody has yet.
func ClusterRing(ctx context.Context, etcd *cluster.Etcd, size int, l Layout, log *slog.Logger) (*ring.Ring, error) {
	logged := time.Time{}
	for {
		if b, err := etcd.Get(ctx, KeyRing); err == nil {
			r, err := DecodeRing(b)
			if err != nil {
				return nil, fmt.Errorf("cluster ring: %w", err)
			}
			return r, nil
		} else if !errors.Is(err, metastore.ErrNotFound) {
			return nil, err
		}
		members, err := cluster.ListMembers(ctx, etcd)
		if err != nil {
			return nil, err
		}
		up := 0
		for _, m := range members {
			if m.State == "up" {
				up++
			}
		}
		if size > 0 && up >= size {
			r, err := buildClusterRing(members, l, log)
			if err != nil {
				return nil, err
			}
			b, err := r.MarshalBinary()
			if err != nil {
				return nil, err
			}
			if _, err := etcd.PutIfAbsent(ctx, KeyRing, b); err != nil {
				return nil, err
			}
			continue // read back whichever ring won
		}
		if time.Since(logged) > 10*time.Second {
			log.Info("waiting for the cluster's ring", "members_up", up, "cluster_size", size)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// buildClusterRing places every device of every live member.
func buildClusterRing(members []cluster.NodeInfo, l Layout, log *slog.Logger) (*ring.Ring, error) {
	k, m, err := l.erasure()
	if err != nil {
		return nil, err
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	var devs []ring.Device
	for _, mb := range members {
		if mb.State != "up" {
			continue
		}
		for _, d := range mb.Devices {
			devs = append(devs, ring.Device{ID: uint32(len(devs)), Region: mb.Region, Zone: mb.Zone, Node: mb.Name, Name: d.Name, Weight: 1})
		}
	}
	r, err := ring.Build(devs, l.PartPower, k, m)
	if err != nil {
		return nil, fmt.Errorf("building the cluster ring: %w", err)
	}
	log.Info("built the cluster ring", "devices", len(devs), "ec", fmt.Sprintf("%d+%d", k, m))
	return r, nil
}
