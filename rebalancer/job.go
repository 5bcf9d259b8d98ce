package rebalancer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/ring"
)

// State is a job's state, as the operator set it or as it ended.
type State string

// Job states.
const (
	Running   State = "running"
	Paused    State = "paused"
	Done      State = "done"
	Cancelled State = "cancelled" // stopped; a rollback job moves back what moved
)

// Job is a rebalance as the operator started it; the executor never
// writes it (it writes Progress), so pause, resume and cancel are not lost
// to a checkpoint.
type Job struct {
	ID          string    `json:"id"`
	State       State     `json:"state"`
	Owner       string    `json:"owner"` // the node running the executor
	Target      uint64    `json:"target"`
	Sources     []uint64  `json:"sources"` // ring versions, oldest first
	Limit       int64     `json:"limit_bytes_per_second"`
	Concurrency int       `json:"concurrency"`
	Created     time.Time `json:"created"`
	// RollsBack names the job a cancel undid (this job moves back what
	// that one had moved).
	RollsBack string  `json:"rolls_back,omitempty"`
	Plan      Summary `json:"plan"`
}

// Active reports whether the job's sources still hold data.
func (j *Job) Active() bool { return j != nil && (j.State == Running || j.State == Paused) }

// Stats counts what moving did.
type Stats struct {
	Records  int64 `json:"records"` // records walked
	Copied   int64 `json:"copied"`
	Found    int64 `json:"found"` // already at the target
	Stale    int64 `json:"stale"` // obsolete sources removed
	Rebuilt  int64 `json:"rebuilt"`
	Deferred int64 `json:"deferred"` // left for a later pass
	Lost     int64 `json:"lost"`
	Bytes    int64 `json:"bytes"` // shard bytes written to targets
}

func (s *Stats) add(o Stats) {
	s.Records += o.Records
	s.Copied += o.Copied
	s.Found += o.Found
	s.Stale += o.Stale
	s.Rebuilt += o.Rebuilt
	s.Deferred += o.Deferred
	s.Lost += o.Lost
	s.Bytes += o.Bytes
}

// UnitStatus is one unit's progress.
type UnitStatus struct {
	Kind         string `json:"kind"`
	Source       int    `json:"source"`
	Device       uint32 `json:"device"`
	DeviceName   string `json:"device_name"`
	Moves        int    `json:"moves"`
	PlannedBytes int64  `json:"planned_bytes"`
	Cursor       []byte `json:"cursor,omitempty"`
	Pass         int    `json:"pass"`
	Done         bool   `json:"done"`
	Stats
	// DeferredPass counts records deferred in the current pass.
	DeferredPass int64  `json:"deferred_pass"`
	LastError    string `json:"last_error,omitempty"`
}

func (u *UnitStatus) same(o *Unit) bool {
	return u.Kind == o.Kind && u.Source == o.Source && u.Device == o.Device
}

// Progress is what the executor checkpoints.
type Progress struct {
	JobID    string       `json:"job_id"`
	Units    []UnitStatus `json:"units"`
	Started  time.Time    `json:"started"`
	Updated  time.Time    `json:"updated"`
	Finished time.Time    `json:"finished,omitzero"`
	// RunSeconds is the time spent running (not paused, not waiting for
	// the ring to reach every node), summed over restarts.
	RunSeconds float64 `json:"run_seconds"`
	Restarts   int     `json:"restarts"`
	Done       bool    `json:"done"`
}

// Totals sums the units.
func (p *Progress) Totals() Stats {
	var s Stats
	for i := range p.Units {
		s.add(p.Units[i].Stats)
	}
	return s
}

// Status is a job with its progress and the figures derived from them:
// what `strata rebalance status` prints and /metrics exports.
type Status struct {
	Job      *Job      `json:"job"`
	Progress *Progress `json:"progress"`
	Totals   Stats     `json:"totals"`
	// Ratio is moved bytes over planned bytes (1 when done).
	Ratio float64 `json:"ratio"`
	// Rate is bytes per second of running time; ETA the seconds left at
	// that measured rate (at the limit before anything was measured: a
	// limit is a ceiling, not a forecast).
	Rate float64 `json:"rate_bytes_per_second"`
	ETA  float64 `json:"eta_seconds"`
	Live bool    `json:"live"` // read from the running executor, not a checkpoint
}

// minMeasured is the running time after which the measured rate, not the
// limit, gives the ETA.
const minMeasured = 5

// NewStatus derives the figures.
func NewStatus(j *Job, p *Progress, live bool) Status {
	st := Status{Job: j, Progress: p, Live: live}
	if p == nil {
		return st
	}
	st.Totals = p.Totals()
	if p.RunSeconds > 0 {
		st.Rate = float64(st.Totals.Bytes) / p.RunSeconds
	}
	planned := j.Plan.Bytes
	switch {
	case p.Done:
		st.Ratio = 1
	case planned > 0:
		st.Ratio = min(float64(st.Totals.Bytes)/float64(planned), 0.999)
	}
	left := float64(max(planned-st.Totals.Bytes, 0))
	switch {
	case p.Done:
	case st.Rate > 0 && p.RunSeconds >= minMeasured:
		st.ETA = left / st.Rate
	case j.Limit > 0:
		st.ETA = left / float64(j.Limit)
	case st.Rate > 0:
		st.ETA = left / st.Rate
	}
	return st
}

// Jobs keeps the job, its progress and its source rings in a metadata
// store (etcd in a cluster, the node's pebble alone).
type Jobs struct {
	Meta metastore.Store
}

// Keys under the jobs' prefix.
const (
	keyJob      = "job"
	keyProgress = "progress"
	keySource   = "source/"
)

// ErrNoJob reports that no rebalance was ever started.
var ErrNoJob = errors.New("rebalancer: no rebalance job")

// Load returns the job (ErrNoJob if none) and its progress (nil if none).
func (js *Jobs) Load(ctx context.Context) (*Job, *Progress, error) {
	b, err := js.Meta.Get(ctx, keyJob)
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, nil, ErrNoJob
	}
	if err != nil {
		return nil, nil, err
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, nil, fmt.Errorf("rebalance job: %w", err)
	}
	b, err = js.Meta.Get(ctx, keyProgress)
	if errors.Is(err, metastore.ErrNotFound) {
		return &j, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var p Progress
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, nil, fmt.Errorf("rebalance progress: %w", err)
	}
	if p.JobID != j.ID {
		return &j, nil, nil
	}
	return &j, &p, nil
}

// SaveJob stores the job.
func (js *Jobs) SaveJob(ctx context.Context, j *Job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return js.Meta.Put(ctx, keyJob, b)
}

// SaveProgress stores a checkpoint.
func (js *Jobs) SaveProgress(ctx context.Context, p *Progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return js.Meta.Put(ctx, keyProgress, b)
}

// SaveSource keeps a ring that data is moving away from.
func (js *Jobs) SaveSource(ctx context.Context, r *ring.Ring) error {
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	return js.Meta.Put(ctx, keySource+strconv.FormatUint(r.Version, 10), b)
}

// Sources returns the job's source rings, oldest first.
func (js *Jobs) Sources(ctx context.Context, j *Job) ([]*ring.Ring, error) {
	var out []*ring.Ring
	for _, v := range j.Sources {
		b, err := js.Meta.Get(ctx, keySource+strconv.FormatUint(v, 10))
		if err != nil {
			return nil, fmt.Errorf("source ring v%d: %w", v, err)
		}
		r := &ring.Ring{}
		if err := r.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("source ring v%d: %w", v, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// DropSources removes the stored source rings but keep.
func (js *Jobs) DropSources(ctx context.Context, keep []uint64) error {
	kvs, err := js.Meta.List(ctx, keySource)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		v, _ := strconv.ParseUint(strings.TrimPrefix(kv.Key, keySource), 10, 64)
		kept := false
		for _, k := range keep {
			kept = kept || k == v
		}
		if !kept {
			if err := js.Meta.Delete(ctx, kv.Key); err != nil {
				return err
			}
		}
	}
	return nil
}
