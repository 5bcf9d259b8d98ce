// Package nodescrub scrubs what one node holds: each local shard store,
// each volume it answers for (attached here, or the first of its replica
// nodes by name when attached nowhere) and, on the one node that checks
// it, the placement of every object; with the scrub operations of the
// admin API and the scrub metrics.
package nodescrub

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/blockpool/blockserve"
	"github.com/strata-storage/strata/blockpool/replicate"
	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/devices"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/scrub"
)

// Config is what a node's scrubbing needs.
type Config struct {
	Node string
	// State keeps the passes' progress; Rate (bytes/s, negative: no
	// scrubbing) and Period pace them.
	State  metastore.Store
	Rate   int64
	Period time.Duration
	Store  *objectstore.Store
	// Devices are the local shard stores; Volumes (nil: none) the volumes.
	Devices *devices.Set
	Volumes *volumes.Manager
	// Checker says whether this node checks placement for the whole store.
	Checker func() bool
	// Busy says clients are being served: a pass then yields.
	Busy     func() bool
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Scrubber is a node's scrubbing (a nil runner: turned off).
type Scrubber struct {
	cfg    Config
	runner *scrub.Runner
}

// New makes the scrubber; Run runs it.
func New(cfg Config) *Scrubber {
	sc := &Scrubber{cfg: cfg}
	if cfg.Rate < 0 {
		return sc // disabled
	}
	sc.runner = scrub.New(scrub.Config{State: cfg.State, Targets: sc.targets, Rate: cfg.Rate, Period: cfg.Period, Busy: cfg.Busy, Log: cfg.Log})
	cfg.Registry.MustRegister(scrubCollector{sc.runner})
	return sc
}

// Run scrubs until ctx ends.
func (sc *Scrubber) Run(ctx context.Context) {
	if sc.runner != nil {
		sc.runner.Run(ctx)
	}
}

// Record counts what a scrub outside the passes found.
func (sc *Scrubber) Record(ctx context.Context, st scrub.Stats) {
	if sc.runner != nil {
		sc.runner.Record(ctx, st)
	}
}

// RecordPlacement counts what a placement repair found.
func (sc *Scrubber) RecordPlacement(ctx context.Context, rep objectstore.RepairReport) {
	sc.Record(ctx, placementStats(rep))
}

func (sc *Scrubber) targets() []scrub.Target {
	var out []scrub.Target
	if sc.cfg.Checker() {
		out = append(out, placementTarget{sc})
	}
	for _, ld := range sc.cfg.Devices.Snapshot() {
		if ld.Store != nil {
			out = append(out, deviceTarget{sc: sc, name: ld.Name, store: ld.Store})
		}
	}
	if sc.cfg.Volumes == nil {
		return out
	}
	recs, err := sc.cfg.Volumes.Records(context.Background())
	if err != nil {
		return out
	}
	attached := sc.cfg.Volumes.Attached()
	for _, rec := range recs {
		nodes := append([]string(nil), rec.Nodes...)
		sort.Strings(nodes)
		if attached[rec.Name] != nil || len(nodes) > 0 && nodes[0] == sc.cfg.Node {
			out = append(out, volumeTarget{sc: sc, name: rec.Name, size: rec.Size * int64(len(rec.Nodes))})
		}
	}
	return out
}

// placementTarget is the deep check of placement: every current object's
// shard records where the ring says (missing ones rebuilt), records off the
// placement counted (the device scrub collects them after its grace), once
// a pass.
type placementTarget struct{ sc *Scrubber }

func (t placementTarget) Name() string { return "placement" }
func (t placementTarget) Size() int64  { return 0 }

func (t placementTarget) Step(ctx context.Context, _ []byte, _ func(context.Context, int) error) (scrub.Stats, []byte, error) {
	rep, err := t.sc.cfg.Store.VerifyPlacement(ctx)
	if errors.Is(err, shard.ErrOffline) || errors.Is(err, objectstore.ErrMoving) {
		// A device is down, or a rebalance is placing records: after.
		return scrub.Stats{}, nil, scrub.ErrSkip
	}
	return placementStats(rep), nil, err
}

func placementStats(rep objectstore.RepairReport) scrub.Stats {
	return scrub.Stats{Errors: int64(rep.Missing), Repaired: int64(rep.Repaired), Unrecoverable: int64(rep.Unreadable), Damaged: rep.Problems, Misplaced: int64(rep.Extra)}
}

// deviceTarget scrubs one local shard store.
type deviceTarget struct {
	sc    *Scrubber
	name  string
	store *shard.Store
}

func (t deviceTarget) Name() string { return "device/" + t.name }
func (t deviceTarget) Size() int64  { return t.store.Head() }

func (t deviceTarget) Step(ctx context.Context, cursor []byte, throttle func(context.Context, int) error) (scrub.Stats, []byte, error) {
	st, next, err := t.sc.cfg.Store.ScrubDevice(ctx, t.store, objectstore.ScrubOptions{From: cursor, MaxRecords: 256, Throttle: throttle})
	return st.Stats, next, err
}

// volumeTarget verifies a volume's replicas through a primary on this node.
type volumeTarget struct {
	sc   *Scrubber
	name string
	size int64 // bytes read by a pass: the volume on each replica
}

func (t volumeTarget) Name() string { return "volume/" + t.name }
func (t volumeTarget) Size() int64  { return t.size }

const volumeScrubStep = 64 << 20

func (t volumeTarget) Step(ctx context.Context, cursor []byte, throttle func(context.Context, int) error) (scrub.Stats, []byte, error) {
	var off int64
	if len(cursor) == 8 {
		off = int64(binary.BigEndian.Uint64(cursor))
	}
	st, next, err := t.sc.cfg.Volumes.VerifyStep(ctx, t.name, off, volumeScrubStep, throttle)
	if errors.Is(err, replicate.ErrPrimaryElsewhere) || errors.Is(err, replicate.ErrFenced) {
		err = scrub.ErrSkip // a client's primary elsewhere has it (or took it over)
	}
	out := scrub.Stats{Bytes: st.Bytes, Errors: st.BadBlocks + st.Mismatched, Repaired: st.Repaired + st.Mismatched, Unrecoverable: st.Unrecoverable}
	if st.Unrecoverable > 0 {
		out.Damaged = []string{fmt.Sprintf("volume %s: %d blocks bad on every replica between %d and %d", t.name, st.Unrecoverable, off, off+volumeScrubStep)}
	}
	if err != nil || next < 0 {
		return out, nil, err
	}
	return out, binary.BigEndian.AppendUint64(nil, uint64(next)), nil
}

// scrubCollector exports the runner's books.
type scrubCollector struct{ r *scrub.Runner }

var (
	descScrubBytes    = prometheus.NewDesc("strata_scrub_bytes_total", "Bytes read and verified by scrubbing.", []string{"target"}, nil)
	descScrubErrors   = prometheus.NewDesc("strata_scrub_errors_total", "Checksum errors (bad shard records, bad or mismatched volume blocks) found by scrubbing.", []string{"target"}, nil)
	descScrubRepaired = prometheus.NewDesc("strata_scrub_repaired_total", "Errors found by scrubbing and repaired from redundancy.", []string{"target"}, nil)
	descScrubLost     = prometheus.NewDesc("strata_scrub_unrecoverable_total", "Errors found by scrubbing that redundancy could not repair.", []string{"target"}, nil)
	descScrubOrphans  = prometheus.NewDesc("strata_scrub_collected_total", "Shard records off the ring's placement removed by scrubbing after the grace period.", []string{"target"}, nil)
	descScrubSince    = prometheus.NewDesc("strata_scrub_seconds_since_full_pass", "Seconds since the target's last complete pass (absent before the first).", []string{"target"}, nil)
	descScrubBehind   = prometheus.NewDesc("strata_scrub_behind_schedule", "1 while a pass has run longer than the scrub period.", []string{"target"}, nil)
	descScrubProgress = prometheus.NewDesc("strata_scrub_progress_ratio", "Progress of the pass in progress (estimate).", []string{"target"}, nil)
	descScrubRate     = prometheus.NewDesc("strata_scrub_rate_bytes_per_second", "Bytes verified per second since the pass in progress started.", []string{"target"}, nil)
	descScrubETA      = prometheus.NewDesc("strata_scrub_eta_seconds", "Seconds left of the pass in progress at its rate so far.", []string{"target"}, nil)
)

func (c scrubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descScrubBytes, descScrubErrors, descScrubRepaired, descScrubLost, descScrubOrphans, descScrubSince, descScrubBehind, descScrubProgress, descScrubRate, descScrubETA} {
		ch <- d
	}
}

func (c scrubCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.r.Status() {
		ch <- prometheus.MustNewConstMetric(descScrubBytes, prometheus.CounterValue, float64(s.Total.Bytes), s.Target)
		ch <- prometheus.MustNewConstMetric(descScrubErrors, prometheus.CounterValue, float64(s.Total.Errors), s.Target)
		ch <- prometheus.MustNewConstMetric(descScrubRepaired, prometheus.CounterValue, float64(s.Total.Repaired), s.Target)
		ch <- prometheus.MustNewConstMetric(descScrubLost, prometheus.CounterValue, float64(s.Total.Unrecoverable), s.Target)
		ch <- prometheus.MustNewConstMetric(descScrubOrphans, prometheus.CounterValue, float64(s.Total.Collected), s.Target)
		if s.LastFullPass != nil {
			ch <- prometheus.MustNewConstMetric(descScrubSince, prometheus.GaugeValue, time.Since(*s.LastFullPass).Seconds(), s.Target)
		}
		behind := 0.0
		if s.BehindSchedule {
			behind = 1
		}
		ch <- prometheus.MustNewConstMetric(descScrubBehind, prometheus.GaugeValue, behind, s.Target)
		ch <- prometheus.MustNewConstMetric(descScrubProgress, prometheus.GaugeValue, s.Progress, s.Target)
		if s.State == "scrubbing" {
			ch <- prometheus.MustNewConstMetric(descScrubRate, prometheus.GaugeValue, s.Rate, s.Target)
			ch <- prometheus.MustNewConstMetric(descScrubETA, prometheus.GaugeValue, s.ETA, s.Target)
		}
	}
}

// Handlers serve the scrub operations.
func (sc *Scrubber) Handlers() map[admin.Op]admin.Handler {
	// on refuses every scrub call when scrubbing is off.
	on := func(h admin.Handler) admin.Handler {
		return func(w http.ResponseWriter, r *admin.Request) error {
			if sc.runner == nil {
				return &admin.Error{Status: http.StatusConflict, Code: "ScrubDisabled", Message: "scrubbing is off on this node (--scrub-rate -1)"}
			}
			return h(w, r)
		}
	}
	return map[admin.Op]admin.Handler{
		admin.ScrubStatus: on(func(w http.ResponseWriter, r *admin.Request) error {
			return admin.WriteJSON(w, sc.runner.Status())
		}),
		admin.ScrubControl: on(func(w http.ResponseWriter, r *admin.Request) error {
			action, err := admin.Action(r, "pause", "resume", "now")
			if err != nil {
				return err
			}
			var req admin.TargetRequest
			if err := r.Decode(&req, true); err != nil {
				return err
			}
			switch action {
			case "pause":
				err = sc.runner.Pause(req.Target)
			case "resume":
				err = sc.runner.Resume(req.Target)
			default:
				err = sc.runner.Now(req.Target)
			}
			if errors.Is(err, scrub.ErrNoTarget) {
				return &admin.Error{Status: http.StatusNotFound, Code: "NoSuchTarget", Message: err.Error()}
			}
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, sc.runner.Status())
		}),
		admin.ScrubObject: on(func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.ObjectRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			st, err := sc.cfg.Store.ScrubObject(r.Context(), req.Bucket, req.Key)
			if errors.Is(err, objectstore.ErrNoSuchKey) || errors.Is(err, objectstore.ErrNoSuchBucket) {
				return &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoSuchKey, Message: fmt.Sprintf("%s/%s: %v", req.Bucket, req.Key, err)}
			}
			if err != nil {
				return err
			}
			found := scrub.Stats{Bytes: st.Bytes, Errors: st.Errors, Repaired: st.Repaired, Unrecoverable: st.Unrecoverable}
			if st.Unrecoverable > 0 {
				found.Damaged = []string{req.Bucket + "/" + req.Key}
			}
			sc.runner.Record(r.Context(), found)
			return admin.WriteJSON(w, st)
		}),
		admin.ScrubVolume: on(func(w http.ResponseWriter, r *admin.Request) error {
			name := r.PathValue("name")
			var total replicate.VerifyStats
			for off := int64(0); off >= 0; {
				st, next, err := sc.cfg.Volumes.VerifyStep(r.Context(), name, off, volumeScrubStep, nil)
				total.Add(st)
				if err != nil {
					return blockserve.Error(err)
				}
				off = next
			}
			found := scrub.Stats{Bytes: total.Bytes, Errors: total.BadBlocks + total.Mismatched, Repaired: total.Repaired + total.Mismatched, Unrecoverable: total.Unrecoverable}
			if total.Unrecoverable > 0 {
				found.Damaged = []string{"volume/" + name}
			}
			sc.runner.Record(r.Context(), found)
			return admin.WriteJSON(w, total)
		}),
	}
}
