package node

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/admin/gate"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/placement"
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
		Audit: n.claimMeta("audit"), Node: n.cfg.NodeName, ErrorOf: placement.ErrorOf, Registry: n.Registry, Log: n.log,
	})
	all := map[admin.Op]admin.Handler{}
	for _, group := range []map[admin.Op]admin.Handler{n.place.Handlers(), n.haltHandlers(), n.blocks.Handlers(), n.scrub.Handlers(), n.users.Handlers(), n.quota.Handlers(), n.claims.Handlers(), g.Handlers()} {
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

// haltHandlers serve a drill's node halt.
func (n *Node) haltHandlers() map[admin.Op]admin.Handler {
	return map[admin.Op]admin.Handler{
		admin.NodeHalt: func(w http.ResponseWriter, r *admin.Request) error {
			if n.cfg.Halt == nil {
				return &admin.Error{Status: http.StatusForbidden, Code: "HaltDisabled", Message: "this node was not started with --allow-halt"}
			}
			n.log.Warn("halting on request of the admin API")
			admin.WriteJSON(w, admin.HaltAnswer{Halting: n.cfg.NodeName})
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			go func() { time.Sleep(50 * time.Millisecond); n.cfg.Halt() }()
			return nil
		},
	}
}

// recordPlacement gives scrub the placement repair that refilled a
// rebuilt device.
func (n *Node) recordPlacement(ctx context.Context, rep objectstore.RepairReport) {
	if n.scrub != nil {
		n.scrub.RecordPlacement(ctx, rep)
	}
}
