package conformance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// nbdConn is a small NBD client (fixed newstyle, NBD_OPT_GO, simple
// replies) written from the protocol spec. The Debian tools are one-shot
// processes; a test that must keep a volume attached across a node's death
// (as a VM keeps its disk) holds one of these instead.
type nbdConn struct {
	c      net.Conn
	mu     sync.Mutex
	handle uint64
	size   int64
}

func dialNBD(addr, export string) (*nbdConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	n := &nbdConn{c: c}
	if err := n.handshake(export); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return n, nil
}

func (n *nbdConn) handshake(export string) error {
	var hello [18]byte
	if _, err := io.ReadFull(n.c, hello[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint64(hello[:]) != 0x4e42444d41474943 || binary.BigEndian.Uint64(hello[8:]) != 0x49484156454F5054 {
		return errors.New("nbd: bad greeting")
	}
	n.c.Write([]byte{0, 0, 0, 3}) // fixed newstyle, no zeroes
	data := binary.BigEndian.AppendUint32(nil, uint32(len(export)))
	data = append(data, export...)
	data = binary.BigEndian.AppendUint16(data, 0)
	opt := binary.BigEndian.AppendUint64(nil, 0x49484156454F5054)
	opt = binary.BigEndian.AppendUint32(opt, 7) // NBD_OPT_GO
	opt = binary.BigEndian.AppendUint32(opt, uint32(len(data)))
	if _, err := n.c.Write(append(opt, data...)); err != nil {
		return err
	}
	for {
		var hdr [20]byte
		if _, err := io.ReadFull(n.c, hdr[:]); err != nil {
			return err
		}
		typ, l := binary.BigEndian.Uint32(hdr[12:]), binary.BigEndian.Uint32(hdr[16:])
		body := make([]byte, l)
		if _, err := io.ReadFull(n.c, body); err != nil {
			return err
		}
		switch {
		case typ == 1: // ACK
			return nil
		case typ == 3 && l >= 12 && binary.BigEndian.Uint16(body) == 0: // INFO_EXPORT
			n.size = int64(binary.BigEndian.Uint64(body[2:]))
		case typ&(1<<31) != 0:
			return fmt.Errorf("nbd: export %q refused: %s", export, body)
		}
	}
}

const (
	nbdCmdRead  = 0
	nbdCmdWrite = 1
	nbdCmdFlush = 3
)

// do sends one request and waits for its reply (one at a time).
func (n *nbdConn) do(cmd uint16, off int64, data []byte, readLen int) ([]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handle++
	req := binary.BigEndian.AppendUint32(nil, 0x25609513)
	req = binary.BigEndian.AppendUint16(req, 0)
	req = binary.BigEndian.AppendUint16(req, cmd)
	req = binary.BigEndian.AppendUint64(req, n.handle)
	req = binary.BigEndian.AppendUint64(req, uint64(off))
	l := len(data)
	if cmd == nbdCmdRead {
		l = readLen
	}
	req = binary.BigEndian.AppendUint32(req, uint32(l))
	n.c.SetDeadline(time.Now().Add(60 * time.Second))
	defer n.c.SetDeadline(time.Time{})
	if _, err := n.c.Write(append(req, data...)); err != nil {
		return nil, err
	}
	var rep [16]byte
	if _, err := io.ReadFull(n.c, rep[:]); err != nil {
		return nil, err
	}
	if binary.BigEndian.Uint64(rep[8:]) != n.handle {
		return nil, errors.New("nbd: reply for another request")
	}
	if errno := binary.BigEndian.Uint32(rep[4:]); errno != 0 {
		return nil, fmt.Errorf("nbd: error %d", errno)
	}
	if cmd != nbdCmdRead {
		return nil, nil
	}
	buf := make([]byte, readLen)
	_, err := io.ReadFull(n.c, buf)
	return buf, err
}

func (n *nbdConn) WriteAt(p []byte, off int64) error {
	_, err := n.do(nbdCmdWrite, off, p, 0)
	return err
}

func (n *nbdConn) ReadAt(length int, off int64) ([]byte, error) {
	return n.do(nbdCmdRead, off, nil, length)
}

func (n *nbdConn) Flush() error {
	_, err := n.do(nbdCmdFlush, 0, nil, 0)
	return err
}

func (n *nbdConn) Close() error {
	req := binary.BigEndian.AppendUint32(nil, 0x25609513)
	req = binary.BigEndian.AppendUint16(req, 0)
	req = binary.BigEndian.AppendUint16(req, 2) // NBD_CMD_DISC
	req = append(req, make([]byte, 20)...)
	n.c.Write(req)
	return n.c.Close()
}
