// Package node assembles one Strata process from its parts: the data dir,
// file-thin pools with one chunk volume each, the shard stores on them, the
// ring, the object layer, and the S3 and admin (metrics, health) listeners.
//
// It is the embedded default of DESIGN.md when given no options: four pools
// under ./strata-data, EC 2+2, S3 on 127.0.0.1:9000, admin on
// 127.0.0.1:9001. Restarting on the same data dir keeps every object: the
// ring, the metadata database and the volumes all live there.
package node

import ()
