package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/admin/gate"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/rebalancer"
	"github.com/strata-storage/strata/ring"
)

// The admin API (its routes, types and client are package admin, its
// authentication and audit log package admin/gate): this file assembles
// it and serves the ring, cluster and node operations; the other handlers
// sit beside what they serve (volumes.go, scrub.go, users.go, quota.go,
// claims.go, rebalance_admin.go).

// adminAPI is the admin API behind its gate (package admin/gate), with
// every handler group.
func (n *Node) adminAPI() (http.Handler, error) {
	g := gate.New(gate.Config{
		Credentials: n.users, RootKey: n.Root.AccessKey, AdminUser: n.users.AdminUser,
		Audit: n.claimMeta("audit"), Node: n.cfg.NodeName, ErrorOf: adminErrorOf, Registry: n.Registry, Log: n.log,
	})
	all := map[admin.Op]admin.Handler{}
	for _, group := range []map[admin.Op]admin.Handler{n.ringHandlers(), n.blocks.Handlers(), n.scrubHandlers(), n.users.Handlers(), n.quota.Handlers(), n.claims.Handlers(), n.rebalanceHandlers(), g.Handlers()} {
		for op, h := range group {
			if _, dup := all[op]; dup {
				return nil, fmt.Errorf("admin: two handlers for %s", op)
			}
			all[op] = h
		}
	}
	mux, err := admin.NewMux(all)
	if err != nil {
		return nil, err
	}
	return g.Serve(mux), nil
}

// adminErrorOf is the answer for a handler's error: its own admin.Error,
// or one for the errors of the ring, else a 500.
func adminErrorOf(err error) *admin.Error {
	var ae *admin.Error
	if errors.As(err, &ae) {
		return ae
	}
	ae = &admin.Error{Status: http.StatusInternalServerError, Code: admin.CodeInternalError, Message: err.Error()}
	switch {
	case errors.Is(err, ring.ErrNoDevice):
		ae.Status, ae.Code = http.StatusNotFound, admin.CodeNoSuchDevice
	case errors.Is(err, ring.ErrLayout):
		ae.Status, ae.Code = http.StatusConflict, admin.CodeLayoutDoesNotFit
	case strings.HasPrefix(err.Error(), "ring: "):
		ae.Status, ae.Code = http.StatusBadRequest, admin.CodeInvalidArgument
	}
	return ae
}

// ringHandlers serve the ring, cluster and node operations.
func (n *Node) ringHandlers() map[admin.Op]admin.Handler {
	devID := func(r *admin.Request) (uint32, error) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
		if err != nil {
			return 0, admin.BadRequest("device id %q is not a number", r.PathValue("id"))
		}
		return uint32(id), nil
	}
	onDevice := func(f func(w http.ResponseWriter, r *admin.Request, id uint32) error) admin.Handler {
		return func(w http.ResponseWriter, r *admin.Request) error {
			id, err := devID(r)
			if err != nil {
				return err
			}
			return f(w, r, id)
		}
	}
	return map[admin.Op]admin.Handler{
		admin.RingGet: func(w http.ResponseWriter, r *admin.Request) error {
			return admin.WriteJSON(w, n.CurrentRing().Info())
		},
		admin.RingFile: func(w http.ResponseWriter, r *admin.Request) error {
			rg := n.CurrentRing()
			if r.URL.Query().Get("previous") != "" {
				if rg = n.prev.Load(); rg == nil {
					return &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoPreviousRing, Message: "the ring has not changed since this node started"}
				}
			}
			b, err := rg.MarshalBinary()
			if err != nil {
				return err
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			_, err = w.Write(b)
			return err
		},
		admin.RingDiffGet: func(w http.ResponseWriter, r *admin.Request) error {
			prev, cur := n.prev.Load(), n.CurrentRing()
			if prev == nil {
				return &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoPreviousRing, Message: "the ring has not changed since this node started"}
			}
			return admin.WriteJSON(w, admin.RingDiffAnswer{From: prev.Version, To: cur.Version, Diff: ring.DiffRings(prev, cur)})
		},
		admin.RingAddDevice: func(w http.ResponseWriter, r *admin.Request) error {
			var d ring.Device
			if err := r.Decode(&d, false); err != nil {
				return err
			}
			if d.Node == "" {
				d.Node = n.cfg.NodeName
			}
			if err := n.checkDeviceNode(r.Context(), d.Node); err != nil {
				return err
			}
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) {
				if d.ID == 0 {
					if _, taken := rg.Index(0); taken {
						d.ID = rg.NextID()
					}
				}
				return rg.AddDevice(d)
			})
		},
		admin.RingRemove: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.RemoveDevice(id) })
		}),
		admin.RingSetWeight: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			var req admin.WeightRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if req.Weight == nil {
				return admin.BadRequest("missing Weight")
			}
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.SetWeight(id, *req.Weight) })
		}),
		admin.RingRebuild: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			ans, err := n.rebuildDevice(id)
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, ans)
		}),
		admin.RingSetState: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			var req admin.StateRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if req.State == nil || *req.State == ring.Removing {
				return admin.BadRequest("State must be active, draining or failed (remove a device with DELETE)")
			}
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.SetState(id, *req.State) })
		}),
		admin.RingRebalance: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.RingRebalanceRequest
			if err := r.Decode(&req, true); err != nil {
				return err
			}
			var ans admin.RebalanceAnswer
			var job *rebalancer.Job
			err := n.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
				return n.rebalanceRing(rg, req.IgnoreMinPartHours, &ans)
			}, jobOptions{}, &job)
			ans.Job = job
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, ans)
		},
		admin.NodesList: func(w http.ResponseWriter, r *admin.Request) error {
			members, err := n.Members(r.Context())
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, members)
		},
		admin.ClusterVerify: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.VerifyRequest
			if err := r.Decode(&req, true); err != nil {
				return err
			}
			rep, err := n.store.Verify(r.Context(), req.Repair)
			if errors.Is(err, objectstore.ErrMoving) {
				return &admin.Error{Status: http.StatusConflict, Code: admin.CodeRebalanceRunning, Message: "a rebalance is moving records: verify without --repair, or wait for it (strata rebalance status)"}
			}
			if err != nil {
				return &admin.Error{Status: http.StatusServiceUnavailable, Code: "VerifyIncomplete", Message: err.Error()}
			}
			return admin.WriteJSON(w, rep)
		},
		admin.ClusterCheck: func(w http.ResponseWriter, r *admin.Request) error {
			rc, err := n.store.CheckReadable(r.Context(), 8)
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, rc)
		},
		admin.ClusterHints: func(w http.ResponseWriter, r *admin.Request) error {
			pending, err := n.store.PendingHints(r.Context())
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, admin.Hints{Pending: pending})
		},
	}
}

func (n *Node) editRing(w http.ResponseWriter, edit func(*ring.Ring) (*ring.Ring, error)) error {
	var info ring.Info
	err := n.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
		next, err := edit(rg)
		if err == nil {
			info = next.Info()
		}
		return next, err
	}, jobOptions{}, nil)
	if err != nil {
		return err
	}
	return admin.WriteJSON(w, info)
}

// changeRing applies a ring change. The rebalance job the change needs
// (moves from the old placement, or a job already running) is stored
// first (prepareJob); then, on one node: save the ring file (the old one
// kept as ring.prev) and switch placement; in a cluster: publish the ring
// in etcd (if nobody changed it meanwhile) and switch; every other node
// switches when it sees it. A failure before the switch leaves the old
// ring and job in force. The job (if any) is returned in jobOut and
// started here.
func (n *Node) changeRing(change func(*ring.Ring) (*ring.Ring, error), opt jobOptions, jobOut **rebalancer.Job) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	job, err := n.changeRingLocked(ctx, change, opt)
	if err != nil {
		return err
	}
	if jobOut != nil {
		*jobOut = job
	}
	if job != nil {
		n.jobChanged(context.WithoutCancel(n.bgCtx))
	}
	return nil
}

func (n *Node) changeRingLocked(ctx context.Context, change func(*ring.Ring) (*ring.Ring, error), opt jobOptions) (*rebalancer.Job, error) {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	cur := n.ring.Load()
	next, err := change(cur)
	if err != nil {
		return nil, err
	}
	job, undo, err := n.prepareJob(ctx, cur, next, opt)
	if err != nil {
		return nil, err
	}
	if err := n.switchRing(ctx, cur, next); err != nil {
		undo()
		return nil, err
	}
	return job, nil
}

// switchRing makes next the ring in force (ringMu held).
func (n *Node) switchRing(ctx context.Context, cur, next *ring.Ring) error {
	if n.clustered() {
		if err := n.publishRing(ctx, cur, next); err != nil {
			return err
		}
		return n.applyRing(next)
	}
	for _, d := range next.Devices {
		if d.Node == n.cfg.NodeName {
			if err := n.devs.Open(d); err != nil {
				return fmt.Errorf("device %s: %w", d.Name, err)
			}
		}
	}
	if err := cur.Save(filepath.Join(n.cfg.DataDir, "ring.prev")); err != nil {
		return err
	}
	if err := next.Save(filepath.Join(n.cfg.DataDir, "ring")); err != nil {
		return err
	}
	return n.applyRing(next)
}
