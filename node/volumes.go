package node

import (
	"context"
	"path/filepath"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/blockpool/blockserve"
	"github.com/strata-storage/strata/blockpool/volumes"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/metastore"
)

// Block volumes: the node's volume pool and replicas, the NBD listener,
// the volume admin API and metrics.

// openVolumes opens the node's block volumes on meta (package
// blockpool/blockserve) and starts their keeper.
func (n *Node) openVolumes(ctx context.Context, meta metastore.Store) error {
	var vc volumes.Cluster
	var forward func(context.Context, string) (*admin.Client, error)
	if n.clustered() {
		vc, forward = blockserve.Cluster(n.etcd, n.peers), n.adminClientOf
	}
	server, _, _, err := n.tlsConfigs()
	if err != nil {
		return err
	}
	cfg := n.cfg
	svc, err := blockserve.Open(ctx, blockserve.Config{
		Node: cfg.NodeName, Zone: cfg.Zone, Dir: filepath.Join(cfg.DataDir, "volumes"), Meta: meta, Cluster: vc, Lease: cfg.VolumeLease,
		NBDAddr: cfg.NBDAddr, ServerTLS: server, NBDClientCA: cfg.NBDClientCA, TLSCA: cfg.TLSCA, NBDPSKFile: cfg.NBDPSKFile, NBDInsecure: cfg.NBDInsecure,
		Forward: forward, ServeError: func(err error) { n.errc <- err }, Registry: n.Registry, Log: n.log,
	})
	if err != nil {
		return err
	}
	n.blocks, n.volumes = svc, svc.Manager()
	n.goBackground(func() { svc.RunKeeper(ctx, cfg.VolumeKeeperInterval) })
	return nil
}

// NBDAddr is the bound NBD address ("" when disabled).
func (n *Node) NBDAddr() string {
	if n.blocks == nil {
		return ""
	}
	return n.blocks.NBDAddr()
}

// Volumes is the node's volume manager.
func (n *Node) Volumes() *volumes.Manager { return n.volumes }

func (n *Node) closeVolumes(ctx context.Context) error {
	if n.blocks == nil {
		return nil
	}
	return n.blocks.Close(ctx) // only the first call acts; workers may still read the fields
}

// adminClientOf is another node's admin API client, signed as root: the
// volume calls that must run where a volume is primary go there.
func (n *Node) adminClientOf(ctx context.Context, node string) (*admin.Client, error) {
	addr, err := cluster.AdminAddr(ctx, n.etcd, node)
	if err != nil {
		return nil, err
	}
	_, clientTLS, _, err := n.tlsConfigs()
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if n.cfg.TLSCert != "" {
		scheme = "https"
	}
	return admin.New(admin.Options{Server: scheme + "://" + addr, AccessKey: n.Root.AccessKey, SecretKey: n.Root.SecretKey, Region: n.cfg.Region, TLS: clientTLS})
}
