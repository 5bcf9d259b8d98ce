package placement

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/rebalancer"
	"github.com/strata-storage/strata/ring"
)

// Rebalancing on a node. Every ring change that moves slots (or that
// happens while a rebalance runs) stores the ring it replaces as a source
// and a job naming them, before the new ring is published; every node
// reads through the sources while the job is active, and the node that
// made the change runs the executor (another takes over when that node
// has been down for Config.RebalanceTakeover). The job lives in the
// metadata store: etcd in a cluster, pebble alone.

type rebalanceState struct {
	jobs *rebalancer.Jobs
	exec *rebalancer.Executor

	mu      sync.Mutex
	started bool            // jobs and exec are set
	job     *rebalancer.Job // last seen
	running string          // id of the job the executor runs here
	cancel  context.CancelFunc
	stopped chan struct{}
}

// jobOptions are the operator's settings for the job a ring change starts.
type jobOptions struct {
	Limit       *int64
	Concurrency *int
	rollsBack   string
}

// startRebalancer loads the job, reads through its sources, resumes it if
// it is this node's, and (in a cluster) follows changes to it.
func (pl *Controller) startRebalancer(ctx context.Context) {
	pl.rb.jobs = &rebalancer.Jobs{Meta: pl.cfg.Jobs}
	pl.rb.exec = &rebalancer.Executor{Store: pl.store, Jobs: pl.rb.jobs, Log: pl.log, Self: pl.cfg.Node}
	pl.rb.mu.Lock()
	pl.rb.started = true
	pl.rb.mu.Unlock()
	pl.registerRebalanceMetrics()
	pl.jobChanged(ctx)
	if w, ok := pl.rb.jobs.Meta.(metastore.Watcher); ok {
		pl.goBackground(func() {
			w.Watch(ctx, "job", func(key string, _ []byte) {
				if key == "job" {
					pl.jobChanged(ctx)
				}
			})
		})
		pl.goBackground(func() { pl.takeOverRebalance(ctx) })
	}
}

// jobChanged applies the stored job: sources on, or off when it ended;
// the executor started here if this node owns it.
func (pl *Controller) jobChanged(ctx context.Context) {
	job, _, err := pl.rb.jobs.Load(ctx)
	if errors.Is(err, rebalancer.ErrNoJob) {
		return
	}
	if err != nil {
		pl.log.Warn("rebalance job unreadable", "err", err)
		return
	}
	pl.rb.mu.Lock()
	pl.rb.job = job
	pl.rb.mu.Unlock()
	if err := pl.applySources(ctx, job); err != nil {
		pl.log.Error("rebalance: cannot read through the source rings", "err", err)
	}
	if job.Active() && job.Owner == pl.cfg.Node {
		pl.runJob(ctx, job)
	}
}

// applySources makes the store read through an active job's source rings
// (and stop when it is not active).
func (pl *Controller) applySources(ctx context.Context, job *rebalancer.Job) error {
	if !job.Active() {
		return pl.store.SetSources(nil)
	}
	rings, err := pl.rb.jobs.Sources(ctx, job)
	if err != nil {
		return err
	}
	pl.ringMu.Lock()
	defer pl.ringMu.Unlock()
	var src []objectstore.Placement
	for _, r := range rings {
		for _, d := range r.Devices {
			if d.Node == pl.cfg.Node && d.State != ring.Failed {
				if err := pl.devs.Open(d); err != nil {
					return fmt.Errorf("device %s: %w", d.Name, err)
				}
			}
		}
		src = append(src, objectstore.Placement{Ring: r, Devices: pl.DevicesFor(r)})
	}
	return pl.store.SetSources(src)
}

// runJob starts the executor for job unless it already runs it; another
// job running here is stopped first.
func (pl *Controller) runJob(ctx context.Context, job *rebalancer.Job) {
	pl.rb.mu.Lock()
	if pl.rb.running == job.ID {
		pl.rb.mu.Unlock()
		return
	}
	if pl.rb.cancel != nil {
		pl.rb.cancel()
		stopped := pl.rb.stopped
		pl.rb.mu.Unlock()
		<-stopped
		pl.rb.mu.Lock()
	}
	rctx, cancel := context.WithCancel(ctx)
	pl.rb.running, pl.rb.cancel, pl.rb.stopped = job.ID, cancel, make(chan struct{})
	stopped := pl.rb.stopped
	pl.rb.mu.Unlock()
	pl.goBackground(func() {
		defer close(stopped)
		defer func() {
			pl.rb.mu.Lock()
			if pl.rb.running == job.ID {
				pl.rb.running, pl.rb.cancel = "", nil
			}
			pl.rb.mu.Unlock()
		}()
		for rctx.Err() == nil {
			err := pl.executeJob(rctx, job)
			if err == nil || rctx.Err() != nil {
				return
			}
			pl.log.Warn("rebalance: executor stopped; retrying", "job", job.ID, "err", err)
			select {
			case <-rctx.Done():
			case <-time.After(3 * time.Second):
			}
		}
	})
}

// executeJob waits until every node places by the job's target ring, runs
// the executor, and marks the job done when it finishes.
func (pl *Controller) executeJob(ctx context.Context, job *rebalancer.Job) error {
	if cur, _, err := pl.rb.jobs.Load(ctx); err != nil {
		return err
	} else if cur.ID != job.ID || !cur.Active() || cur.Owner != pl.cfg.Node {
		return nil // replaced, ended or taken over meanwhile
	}
	if err := pl.waitRingEverywhere(ctx, job.Target); err != nil {
		return err
	}
	if err := pl.applySources(ctx, job); err != nil {
		return err
	}
	sources, err := pl.rb.jobs.Sources(ctx, job)
	if err != nil {
		return err
	}
	target := pl.ring.Load()
	plan, err := rebalancer.NewPlan(sources, target, pl.usedBytes(ctx), rebalancer.Dead(target))
	if err != nil {
		return err
	}
	cur, prog, err := pl.rb.jobs.Load(ctx)
	if err != nil {
		return err
	}
	if cur.ID != job.ID || !cur.Active() || cur.Owner != pl.cfg.Node {
		return nil // replaced, ended or taken over meanwhile
	}
	pl.log.Info("rebalance running", "job", job.ID, "target", job.Target, "moves", len(plan.Moves), "units", len(plan.Units), "resumed", prog != nil)
	if err := pl.rb.exec.Run(ctx, cur, prog, plan, sources, target); err != nil {
		return err
	}
	return pl.finishJob(ctx, job.ID)
}

// finishJob marks the job done (if it is still the one stored) and drops
// its sources everywhere.
func (pl *Controller) finishJob(ctx context.Context, id string) error {
	pl.ringMu.Lock()
	defer pl.ringMu.Unlock()
	job, _, err := pl.rb.jobs.Load(ctx)
	if err != nil {
		return err
	}
	if job.ID != id || !job.Active() {
		return nil
	}
	job.State = rebalancer.Done
	if err := pl.rb.jobs.SaveJob(ctx, job); err != nil {
		return err
	}
	if err := pl.store.SetSources(nil); err != nil {
		return err
	}
	return pl.rb.jobs.DropSources(ctx, nil)
}

// waitRingEverywhere waits until this node, and every up member, places
// by version v (a node still on an older ring would write where the
// executor has already walked).
func (pl *Controller) waitRingEverywhere(ctx context.Context, v uint64) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		behind := ""
		if r := pl.ring.Load(); r.Version < v {
			behind = pl.cfg.Node
		} else if pl.clustered() {
			members, err := cluster.ListMembers(ctx, pl.etcd)
			if err != nil {
				return err
			}
			for _, m := range members {
				if m.State == "up" && m.RingVersion < v {
					behind = m.Name
				}
			}
		}
		if behind == "" {
			return nil
		}
		if time.Now().After(deadline) {
			if pl.ring.Load().Version < v {
				return fmt.Errorf("this node has not applied ring v%d", v)
			}
			pl.log.Warn("rebalance starts while a node still places by an older ring", "node", behind, "version", v)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// takeOverRebalance runs an active job whose owner has been down for
// RebalanceTakeover (its progress is in the metadata store).
func (pl *Controller) takeOverRebalance(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
		pl.rb.mu.Lock()
		job := pl.rb.job
		pl.rb.mu.Unlock()
		if !job.Active() || job.Owner == pl.cfg.Node {
			continue
		}
		members, err := cluster.ListMembers(ctx, pl.etcd)
		if err != nil {
			continue
		}
		ownerDown := true
		var first string
		for _, m := range members {
			if m.Name == job.Owner && (m.State == "up" || time.Since(m.Heartbeat) < pl.cfg.RebalanceTakeover) {
				ownerDown = false
			}
			if m.State == "up" && (first == "" || m.Name < first) {
				first = m.Name
			}
		}
		if !ownerDown || first != pl.cfg.Node {
			continue // the first up node by name takes over, so only one does
		}
		pl.ringMu.Lock()
		cur, _, err := pl.rb.jobs.Load(ctx)
		if err == nil && cur.ID == job.ID && cur.Active() {
			pl.log.Warn("rebalance: taking over from a node that is down", "job", job.ID, "owner", job.Owner)
			cur.Owner = pl.cfg.Node
			err = pl.rb.jobs.SaveJob(ctx, cur)
		}
		pl.ringMu.Unlock()
		if err != nil {
			pl.log.Warn("rebalance takeover", "err", err)
		}
	}
}

// usedBytes maps every device id to the shard bytes it holds (local
// devices measured, others from their heartbeats).
func (pl *Controller) usedBytes(ctx context.Context) map[uint32]int64 {
	used := map[uint32]int64{}
	if pl.clustered() {
		if members, err := cluster.ListMembers(ctx, pl.etcd); err == nil {
			for _, m := range members {
				for _, d := range m.Devices {
					used[d.ID] = d.UsedBytes
				}
			}
		}
	}
	for id, ld := range pl.devs.Snapshot() {
		if ld.Store != nil {
			used[id] = ld.Store.Used()
		}
	}
	return used
}

// prepareJob stores the job a change from cur to next needs (ringMu held),
// before next is published, and returns it with a function that puts the
// previous job back if publishing fails. No job: the change moves nothing
// and none is active.
func (pl *Controller) prepareJob(ctx context.Context, cur, next *ring.Ring, opt jobOptions) (*rebalancer.Job, func(), error) {
	prev, _, err := pl.rb.jobs.Load(ctx)
	if err != nil && !errors.Is(err, rebalancer.ErrNoJob) {
		return nil, nil, err
	}
	var sources []*ring.Ring
	if prev.Active() {
		if sources, err = pl.rb.jobs.Sources(ctx, prev); err != nil {
			return nil, nil, err
		}
	}
	if ring.DiffRings(cur, next).Moved > 0 || len(sources) == 0 {
		sources = append(sources, cur)
	}
	plan, err := rebalancer.NewPlan(sources, next, pl.usedBytes(ctx), rebalancer.Dead(next))
	if err != nil {
		return nil, nil, &admin.Error{Status: http.StatusConflict, Code: "CannotRebalance", Message: err.Error()}
	}
	if len(plan.Moves) == 0 && !prev.Active() {
		return nil, func() {}, nil
	}
	job := &rebalancer.Job{ID: newJobID(), State: rebalancer.Running, Owner: pl.cfg.Node, Target: next.Version,
		Limit: pl.cfg.RebalanceLimit, Concurrency: pl.cfg.RebalanceConcurrency, Created: time.Now().UTC(), RollsBack: opt.rollsBack}
	if prev.Active() {
		job.Limit, job.Concurrency = prev.Limit, prev.Concurrency
	}
	if opt.Limit != nil {
		job.Limit = *opt.Limit
	}
	if opt.Concurrency != nil {
		job.Concurrency = *opt.Concurrency
	}
	for _, s := range sources {
		job.Sources = append(job.Sources, s.Version)
	}
	job.Plan = plan.Summarize(sources, next, job.Limit)
	if err := pl.rb.jobs.SaveSource(ctx, cur); err != nil {
		return nil, nil, err
	}
	if err := pl.rb.jobs.SaveJob(ctx, job); err != nil {
		return nil, nil, err
	}
	undo := func() {
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if prev != nil {
			pl.rb.jobs.SaveJob(uctx, prev)
		} else {
			pl.rb.jobs.Meta.Delete(uctx, "job")
		}
	}
	return job, undo, nil
}

func newJobID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rebalanceStatus is the job's status: live from the executor when it
// runs here, else the last checkpoint.
func (pl *Controller) rebalanceStatus(ctx context.Context) (rebalancer.Status, error) {
	if st, ok := pl.rb.exec.Live(); ok {
		return st, nil
	}
	job, prog, err := pl.rb.jobs.Load(ctx)
	if err != nil {
		return rebalancer.Status{}, err
	}
	return rebalancer.NewStatus(job, prog, false), nil
}

// setJobState pauses or resumes the active job.
func (pl *Controller) setJobState(ctx context.Context, to rebalancer.State) (*rebalancer.Job, error) {
	pl.ringMu.Lock()
	defer pl.ringMu.Unlock()
	job, _, err := pl.rb.jobs.Load(ctx)
	if errors.Is(err, rebalancer.ErrNoJob) {
		return nil, &admin.Error{Status: http.StatusNotFound, Code: "NoRebalance", Message: "no rebalance was ever started"}
	}
	if err != nil {
		return nil, err
	}
	if !job.Active() {
		return nil, &admin.Error{Status: http.StatusConflict, Code: "RebalanceNotActive", Message: fmt.Sprintf("the last rebalance is %s", job.State)}
	}
	job.State = to
	return job, pl.rb.jobs.SaveJob(ctx, job)
}

// setJobLimit changes the active job's bandwidth and concurrency limits.
func (pl *Controller) setJobLimit(ctx context.Context, opt jobOptions) (*rebalancer.Job, error) {
	pl.ringMu.Lock()
	defer pl.ringMu.Unlock()
	job, _, err := pl.rb.jobs.Load(ctx)
	if err != nil || !job.Active() {
		return nil, &admin.Error{Status: http.StatusConflict, Code: "RebalanceNotActive", Message: "no rebalance is running"}
	}
	if opt.Limit != nil {
		job.Limit = *opt.Limit
	}
	if opt.Concurrency != nil {
		job.Concurrency = *opt.Concurrency
	}
	return job, pl.rb.jobs.SaveJob(ctx, job)
}

// rollBack cancels the active job: the ring goes back to the newest
// source and a new job moves back what had moved.
func (pl *Controller) rollBack(ctx context.Context) (*rebalancer.Job, error) {
	job, _, err := pl.rb.jobs.Load(ctx)
	if err != nil || !job.Active() {
		return nil, &admin.Error{Status: http.StatusConflict, Code: "RebalanceNotActive", Message: "no rebalance is running"}
	}
	sources, err := pl.rb.jobs.Sources(ctx, job)
	if err != nil {
		return nil, err
	}
	last := sources[len(sources)-1]
	cur := pl.ring.Load()
	dead := rebalancer.Dead(cur)
	for i, c := range last.SlotCounts() {
		if c > 0 && dead(last.Devices[i]) {
			return nil, &admin.Error{Status: http.StatusConflict, Code: "CannotRollBack", Message: fmt.Sprintf("the ring before this rebalance places shards on %s/%s, which has failed since; the rebuild must finish", last.Devices[i].Node, last.Devices[i].Name)}
		}
	}
	var next *rebalancer.Job
	err = pl.changeRing(func(cur *ring.Ring) (*ring.Ring, error) {
		return last.WithVersion(cur.Version + 1), nil
	}, jobOptions{rollsBack: job.ID}, &next)
	return next, err
}

// deviceStateChange edits the state of every ring device matching pick,
// rebalances and starts the job; what the drain and fail commands do.
func (pl *Controller) deviceStateChange(what string, pick func(ring.Device) bool, state ring.State, opt jobOptions) (admin.RebalanceAnswer, error) {
	var ans admin.RebalanceAnswer
	var job *rebalancer.Job
	err := pl.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
		next := rg
		found := 0
		for _, d := range rg.Devices {
			if !pick(d) {
				continue
			}
			found++
			var err error
			if next, err = next.SetState(d.ID, state); err != nil {
				return nil, err
			}
		}
		if found == 0 {
			return nil, &admin.Error{Status: http.StatusNotFound, Code: "NoSuchDevice", Message: fmt.Sprintf("the ring has no device on %s", what)}
		}
		return pl.rebalanceRing(next, false, &ans)
	}, opt, &job)
	ans.Job = job
	if err != nil {
		return ans, err
	}
	// Block volume replicas on the nodes whose every device leaves.
	if pl.volumes != nil && state != ring.Active {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var nodes []string
		cur := pl.ring.Load()
		for _, d := range cur.Devices {
			if pick(d) && !contains(nodes, d.Node) {
				nodes = append(nodes, d.Node)
			}
		}
		for _, d := range cur.Devices {
			if !pick(d) && contains(nodes, d.Node) {
				nodes = remove(nodes, d.Node) // the node keeps other devices
			}
		}
		moves, verr := pl.volumes.Evacuate(ctx, nodes)
		ans.VolumeMoves = moves
		if verr != nil {
			ans.VolumeErrors = verr.Error()
		}
	}
	return ans, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// rebalanceRing rebalances rg and fills ans.
func (pl *Controller) rebalanceRing(rg *ring.Ring, ignoreMinPartHours bool, ans *admin.RebalanceAnswer) (*ring.Ring, error) {
	next, res, err := rg.Rebalance(ring.RebalanceOptions{IgnoreMinPartHours: ignoreMinPartHours})
	if err != nil {
		return nil, err
	}
	used := pl.usedBytes(context.Background())
	*ans = admin.RebalanceAnswer{Version: next.Version, Result: *res, BytesEstimate: res.BytesEstimate(used)}
	return next, nil
}

// planRebalance is what `rebalance start` would do now, without doing it.
func (pl *Controller) planRebalance(ctx context.Context, ignoreMinPartHours bool, limit int64) (rebalancer.Summary, error) {
	cur := pl.ring.Load()
	next, _, err := cur.Rebalance(ring.RebalanceOptions{IgnoreMinPartHours: ignoreMinPartHours})
	if err != nil {
		return rebalancer.Summary{}, err
	}
	sources := []*ring.Ring{cur}
	if job, _, err := pl.rb.jobs.Load(ctx); err == nil && job.Active() {
		if src, err := pl.rb.jobs.Sources(ctx, job); err == nil {
			sources = append(src, cur)
		}
		if limit == 0 {
			limit = job.Limit
		}
	}
	if limit == 0 {
		limit = pl.cfg.RebalanceLimit
	}
	plan, err := rebalancer.NewPlan(sources, next, pl.usedBytes(ctx), rebalancer.Dead(next))
	if err != nil {
		return rebalancer.Summary{}, &admin.Error{Status: http.StatusConflict, Code: "CannotRebalance", Message: err.Error()}
	}
	return plan.Summarize(sources, next, limit), nil
}

// inZone and onNode pick ring devices by zone and by node.
func inZone(z string) func(ring.Device) bool {
	return func(d ring.Device) bool { return d.Zone == z }
}

func onNode(name string) func(ring.Device) bool {
	return func(d ring.Device) bool { return d.Node == name }
}

// removeNode takes a node out of the cluster for good: it must be down
// (no heartbeat) and hold nothing, its devices drained to no slots and no
// block volume replica left on it (strata node drain does both). Its
// devices leave the ring and its member record is deleted.
func (pl *Controller) removeNode(ctx context.Context, name string) (admin.NodeRemoveAnswer, error) {
	ans := admin.NodeRemoveAnswer{Node: name, DevicesRemoved: []string{}}
	conflict := func(code, format string, args ...any) error {
		return &admin.Error{Status: http.StatusConflict, Code: code, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case !pl.clustered():
		return ans, admin.BadRequest("a single node is not removed; it is stopped")
	case name == pl.cfg.Node:
		return ans, conflict("NodeIsSelf", "node %s cannot remove itself: send the request to another node", name)
	}
	members, err := cluster.ListMembers(ctx, pl.etcd)
	if err != nil {
		return ans, err
	}
	known := false
	for _, m := range members {
		if m.Name == name {
			known = true
			if m.State == "up" {
				return ans, conflict("NodeUp", "node %s is up: drain it (strata node drain %s), let the rebalance finish, stop it, then remove it", name, name)
			}
		}
	}
	cur := pl.Current()
	counts := cur.SlotCounts()
	var ids []uint32
	for i, d := range cur.Devices {
		if d.Node != name {
			continue
		}
		if counts[i] > 0 {
			return ans, conflict("NodeNotDrained", "device %s/%s still holds %d slots: strata node drain %s, and let the rebalance finish", name, d.Name, counts[i], name)
		}
		ids = append(ids, d.ID)
		ans.DevicesRemoved = append(ans.DevicesRemoved, d.Name)
	}
	if !known && len(ids) == 0 {
		return ans, &admin.Error{Status: http.StatusNotFound, Code: "NoSuchNode", Message: fmt.Sprintf("no node %s in the cluster or the ring", name)}
	}
	if pl.volumes != nil {
		recs, err := pl.volumes.Records(ctx)
		if err != nil {
			return ans, err
		}
		for _, rec := range recs {
			if contains(rec.Nodes, name) {
				return ans, conflict("NodeNotDrained", "volume %s has a replica on %s: strata node drain %s moves it", rec.Name, name, name)
			}
		}
	}
	if len(ids) > 0 {
		err := pl.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
			next := rg
			for _, id := range ids {
				var err error
				if next, err = next.RemoveDevice(id); err != nil {
					return nil, err
				}
			}
			return next, nil
		}, jobOptions{}, nil)
		if err != nil {
			return ans, err
		}
	}
	ans.RingVersion = pl.Current().Version
	if known {
		if err := cluster.RemoveMember(ctx, pl.etcd, name); err != nil {
			return ans, conflict("NodeUp", "%v", err)
		}
	}
	pl.log.Info("node removed from the cluster", "node", name, "devices", ans.DevicesRemoved, "ring", ans.RingVersion)
	return ans, nil
}
