// Package nbd serves volumes over the Network Block Device protocol
// (fixed newstyle negotiation, simple replies), written from the protocol
// specification: export listing, NBD_OPT_INFO/GO with block sizes, read,
// write, flush, trim and write-zeroes with FUA, several requests in flight
// per connection and many connections.
//
// Security: with a TLS configuration or pre-shared keys the server requires
// NBD_OPT_STARTTLS before anything else (the protocol's forced-TLS mode:
// other options get NBD_REP_ERR_TLS_REQD). A client that offers TLS-PSK
// suites is handed to tlspsk and named by its PSK identity; any other
// goes to crypto/tls and is named by its certificate's common name. An
// Access policy then decides which exports each identity may list and
// attach. Memory is bounded per connection and per
// server (buffers.go), replies that a client does not take within the
// reply timeout end its connection, and a handshake has a deadline.
package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-storage/strata/tlspsk"
)

// Export is what a connection reads and writes: a volume.
type Export interface {
	Size() int64
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Sync() error
	Trim(off, length int64) error
}

// Attacher is an export that must be attached before I/O (a replicated
// volume becomes primary on this node): NBD_OPT_GO and NBD_OPT_EXPORT_NAME
// call Attach and serve what it returns; release runs when the connection
// ends. NBD_OPT_INFO and NBD_OPT_LIST do not attach.
type Attacher interface {
	Attach() (exp Export, release func(), err error)
}

// Exports finds exports by name.
type Exports interface {
	Export(name string) (Export, bool)
	// Names lists the exports for NBD_OPT_LIST.
	Names() []string
}

// Access decides which exports a TLS client may list and attach; identity
// is the common name of its certificate or its PSK identity.
type Access interface {
	MayAttach(identity, export string) bool
}

// Options configure a server; the zero value serves plaintext to anyone
// with the default limits.
type Options struct {
	// TLS, if set, is required of every client (NBD_OPT_STARTTLS); set
	// ClientAuth to require and verify client certificates.
	TLS *tls.Config
	// PSK, if set, lets clients authenticate with TLS-PSK (qemu's
	// tls-creds-psk, libnbd's tls-psk-file) and requires TLS of all.
	PSK tlspsk.Keys
	// Access applies to TLS clients; nil lets every authenticated client
	// attach every export.
	Access Access
	// ConnBuffers and ServerBuffers bound the request payloads held by
	// one connection and by all (DefaultConnBuffers, DefaultServerBuffers).
	ConnBuffers, ServerBuffers int64
	// Handshake bounds the negotiation (30 s); ReplyTimeout is how long a
	// reply may wait for the client to take it before the connection is
	// dropped (60 s).
	Handshake, ReplyTimeout time.Duration
}

// Wire constants of the protocol.
const (
	magicNBD       = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt       = 0x49484156454F5054 // "IHAVEOPT"
	magicOptReply  = 0x3e889045565a9
	magicRequest   = 0x25609513
	magicSimpleRep = 0x67446698

	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	optExportName = 1
	optAbort      = 2
	optList       = 3
	optStartTLS   = 5
	optInfo       = 6
	optGo         = 7

	repAck        = 1
	repServer     = 2
	repInfo       = 3
	repErrUnsup   = 1<<31 + 1
	repErrPolicy  = 1<<31 + 2
	repErrInvalid = 1<<31 + 3
	repErrTLSReqd = 1<<31 + 5
	repErrUnknown = 1<<31 + 6

	infoExport    = 0
	infoName      = 1
	infoBlockSize = 3

	tflagHasFlags     = 1 << 0
	tflagSendFlush    = 1 << 2
	tflagSendFUA      = 1 << 3
	tflagSendTrim     = 1 << 5
	tflagWriteZeroes  = 1 << 6
	tflagCanMultiConn = 1 << 8

	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdTrim        = 4
	cmdWriteZeroes = 6

	cmdFlagFUA    = 1 << 0
	cmdFlagNoHole = 1 << 1

	errIO    = 5
	errInval = 22
	errNoSpc = 28
)

// MaxPayload bounds one read or write request (clients learn it from the
// block size info; larger requests are refused with EINVAL).
const MaxPayload = 32 << 20

// maxInFlight bounds the requests of one connection being served at once.
const maxInFlight = 16

// Server accepts NBD clients.
type Server struct {
	exports Exports
	opts    Options
	bufs    *bufferPool
	zeroes  []byte // read-only source of NO_HOLE write-zeroes
	log     *slog.Logger

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	ln     net.Listener
	closed bool         // Close was called: a later Serve closes its listener
	active atomic.Int64 // requests being served
}

// InFlight is the number of NBD requests being served.
func (s *Server) InFlight() int64 { return s.active.Load() }

// NewServer returns a server of exports.
func NewServer(exports Exports, opts Options, log *slog.Logger) *Server {
	if opts.ConnBuffers <= 0 {
		opts.ConnBuffers = DefaultConnBuffers
	}
	if opts.ServerBuffers <= 0 {
		opts.ServerBuffers = DefaultServerBuffers
	}
	if opts.Handshake <= 0 {
		opts.Handshake = 30 * time.Second
	}
	if opts.ReplyTimeout <= 0 {
		opts.ReplyTimeout = time.Minute
	}
	return &Server{exports: exports, opts: opts, bufs: newBufferPool(opts.ServerBuffers), zeroes: make([]byte, 1<<20), log: log, conns: map[net.Conn]struct{}{}}
}

// BuffersInUse is the bytes of request payloads the server holds now.
func (s *Server) BuffersInUse() int64 { return s.bufs.server.inUse() }

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.serveConn(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("nbd connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops accepting, drops every connection and waits for them.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.bufs.server.close() // a connection waiting for buffers gives up
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type conn struct {
	s        *Server
	active   *atomic.Int64
	c        net.Conn
	exp      Export
	release  func()
	wmu      sync.Mutex // one reply at a time
	noZeros  bool
	tls      bool   // STARTTLS done
	identity string // the client certificate's common name or PSK identity
	budget   *budget
}

// may reports whether the client may see and attach export name.
func (c *conn) may(name string) bool {
	if !c.s.secure() {
		return true
	}
	return c.tls && (c.s.opts.Access == nil || c.s.opts.Access.MayAttach(c.identity, name))
}

func (s *Server) serveConn(nc net.Conn) error {
	c := &conn{s: s, c: nc, active: &s.active, budget: newBudget(s.opts.ConnBuffers)}
	defer c.budget.close()
	// Negotiation must not hang forever on a silent client.
	nc.SetDeadline(time.Now().Add(s.opts.Handshake))
	hello := binary.BigEndian.AppendUint64(nil, magicNBD)
	hello = binary.BigEndian.AppendUint64(hello, magicOpt)
	hello = binary.BigEndian.AppendUint16(hello, flagFixedNewstyle|flagNoZeroes)
	if _, err := nc.Write(hello); err != nil {
		return err
	}
	var cflags [4]byte
	if _, err := io.ReadFull(nc, cflags[:]); err != nil {
		return err
	}
	f := binary.BigEndian.Uint32(cflags[:])
	if f&^(flagFixedNewstyle|flagNoZeroes) != 0 {
		return fmt.Errorf("unknown client flags %#x", f)
	}
	c.noZeros = f&flagNoZeroes != 0
	exp, err := s.negotiate(c)
	if c.release != nil {
		// Attached, even if the final reply of the handshake failed.
		defer c.release()
	}
	if err != nil || exp == nil {
		return err
	}
	c.exp = exp
	nc.SetDeadline(time.Time{})
	return c.transmit()
}

// negotiate runs option haggling; it returns the export to serve, or nil
// after a soft disconnect.
func (s *Server) negotiate(c *conn) (Export, error) {
	var hdr [16]byte
	for {
		if _, err := io.ReadFull(c.c, hdr[:]); err != nil {
			return nil, err
		}
		if binary.BigEndian.Uint64(hdr[:]) != magicOpt {
			return nil, errors.New("bad option magic")
		}
		opt := binary.BigEndian.Uint32(hdr[8:])
		n := binary.BigEndian.Uint32(hdr[12:])
		if n > 64<<10 {
			return nil, fmt.Errorf("option %d data of %d bytes", opt, n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(c.c, data); err != nil {
			return nil, err
		}
		if s.secure() && !c.tls {
			switch opt {
			case optStartTLS, optAbort:
			case optExportName:
				return nil, errors.New("NBD_OPT_EXPORT_NAME before TLS") // no way to answer but hanging up
			default:
				if err := c.optReply(opt, repErrTLSReqd, []byte("TLS is required: use NBD_OPT_STARTTLS")); err != nil {
					return nil, err
				}
				continue
			}
		}
		switch opt {
		case optStartTLS:
			if err := s.startTLS(c, n); err != nil {
				return nil, err
			}
		case optExportName:
			exp, ok := s.exports.Export(string(data))
			if !ok || !c.may(string(data)) {
				return nil, fmt.Errorf("no export %q", data) // the protocol's answer: hang up
			}
			exp, err := c.attach(exp)
			if err != nil {
				return nil, fmt.Errorf("export %q: %w", data, err)
			}
			out := binary.BigEndian.AppendUint64(nil, uint64(exp.Size()))
			out = binary.BigEndian.AppendUint16(out, transmissionFlags)
			if !c.noZeros {
				out = append(out, make([]byte, 124)...)
			}
			_, err = c.c.Write(out)
			return exp, err
		case optAbort:
			c.optReply(opt, repAck, nil)
			return nil, nil
		case optList:
			if n != 0 {
				if err := c.optReply(opt, repErrInvalid, []byte("NBD_OPT_LIST takes no data")); err != nil {
					return nil, err
				}
				continue
			}
			for _, name := range s.exports.Names() {
				if !c.may(name) {
					continue
				}
				b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
				if err := c.optReply(opt, repServer, append(b, name...)); err != nil {
					return nil, err
				}
			}
			if err := c.optReply(opt, repAck, nil); err != nil {
				return nil, err
			}
		case optInfo, optGo:
			exp, err := s.info(c, opt, data)
			if err != nil {
				return nil, err
			}
			if opt == optGo && exp != nil {
				return exp, nil
			}
		default:
			if err := c.optReply(opt, repErrUnsup, []byte("option not supported")); err != nil {
				return nil, err
			}
		}
	}
}

const transmissionFlags = tflagHasFlags | tflagSendFlush | tflagSendFUA | tflagSendTrim | tflagWriteZeroes | tflagCanMultiConn

// info answers NBD_OPT_INFO and NBD_OPT_GO; it returns the export when
// the client may go on to transmission.
func (s *Server) info(c *conn, opt uint32, data []byte) (Export, error) {
	if len(data) < 6 {
		return nil, c.optReply(opt, repErrInvalid, []byte("short request"))
	}
	nameLen := binary.BigEndian.Uint32(data)
	if uint64(nameLen)+6 > uint64(len(data)) {
		return nil, c.optReply(opt, repErrInvalid, []byte("name longer than the request"))
	}
	name := string(data[4 : 4+nameLen])
	nreq := int(binary.BigEndian.Uint16(data[4+nameLen:]))
	if 6+int(nameLen)+2*nreq != len(data) {
		return nil, c.optReply(opt, repErrInvalid, []byte("information request count does not match the length"))
	}
	exp, ok := s.exports.Export(name)
	if !ok || !c.may(name) {
		// An export this client may not attach is not there for it.
		return nil, c.optReply(opt, repErrUnknown, []byte("no such export"))
	}
	if opt == optGo {
		var err error
		if exp, err = c.attach(exp); err != nil {
			s.log.Warn("nbd: export refused", "export", name, "err", err)
			return nil, c.optReply(opt, repErrPolicy, []byte(err.Error()))
		}
	}
	for i := 0; i < nreq; i++ {
		switch binary.BigEndian.Uint16(data[6+int(nameLen)+2*i:]) {
		case infoName:
			b := binary.BigEndian.AppendUint16(nil, infoName)
			if err := c.optReply(opt, repInfo, append(b, name...)); err != nil {
				return nil, err
			}
		}
	}
	// Block sizes are always sent: 1-byte granularity, 4 KiB preferred.
	b := binary.BigEndian.AppendUint16(nil, infoBlockSize)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, 4096)
	b = binary.BigEndian.AppendUint32(b, MaxPayload)
	if err := c.optReply(opt, repInfo, b); err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(nil, infoExport)
	b = binary.BigEndian.AppendUint64(b, uint64(exp.Size()))
	b = binary.BigEndian.AppendUint16(b, transmissionFlags)
	if err := c.optReply(opt, repInfo, b); err != nil {
		return nil, err
	}
	return exp, c.optReply(opt, repAck, nil)
}

// secure reports whether clients must use TLS.
func (s *Server) secure() bool { return s.opts.TLS != nil || s.opts.PSK != nil }

// startTLS answers NBD_OPT_STARTTLS and upgrades the connection; the
// negotiation goes on inside TLS. The ClientHello decides who answers: a
// client offering PSK suites proves its identity's key to tlspsk; any
// other gets crypto/tls, where a client certificate, when given (and
// verified by the configuration), names the client.
func (s *Server) startTLS(c *conn, n uint32) error {
	switch {
	case !s.secure():
		return c.optReply(optStartTLS, repErrUnsup, []byte("this server has no TLS certificate"))
	case c.tls:
		return c.optReply(optStartTLS, repErrInvalid, []byte("TLS is already on"))
	case n != 0:
		return c.optReply(optStartTLS, repErrInvalid, []byte("NBD_OPT_STARTTLS takes no data"))
	}
	if err := c.optReply(optStartTLS, repAck, nil); err != nil {
		return err
	}
	hello, err := tlspsk.ReadHello(c.c)
	if err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	if s.opts.PSK != nil && (hello.OffersPSK() || s.opts.TLS == nil) {
		pc, err := tlspsk.Server(c.c, hello, s.opts.PSK)
		if err != nil {
			return fmt.Errorf("TLS-PSK handshake: %w", err)
		}
		c.c, c.tls, c.identity = pc, true, pc.Identity()
		return nil
	}
	tc := tls.Server(hello.Replay(c.c), s.opts.TLS)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.c, c.tls = tc, true
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		c.identity = certs[0].Subject.CommonName
	}
	return nil
}

// attach attaches an Attacher export for this connection.
func (c *conn) attach(exp Export) (Export, error) {
	a, ok := exp.(Attacher)
	if !ok {
		return exp, nil
	}
	io, release, err := a.Attach()
	if err != nil {
		return nil, err
	}
	c.release = release
	return io, nil
}

func (c *conn) optReply(opt, typ uint32, data []byte) error {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 20+len(data)), magicOptReply)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	_, err := c.c.Write(append(b, data...))
	return err
}

type request struct {
	flags, typ uint16
	handle     uint64
	off        uint64
	length     uint32
	data       []byte // a write's payload
}

// transmit reads requests and serves up to maxInFlight at once; replies go
// out as each finishes.
func (c *conn) transmit() error {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	// Buffered: a request header is 28 bytes; one read takes many.
	in := bufio.NewReaderSize(c.c, 256<<10)
	var hdr [28]byte
	for {
		if _, err := io.ReadFull(in, hdr[:]); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(hdr[:]) != magicRequest {
			return errors.New("bad request magic")
		}
		r := request{
			flags: binary.BigEndian.Uint16(hdr[4:]), typ: binary.BigEndian.Uint16(hdr[6:]),
			handle: binary.BigEndian.Uint64(hdr[8:]), off: binary.BigEndian.Uint64(hdr[16:]), length: binary.BigEndian.Uint32(hdr[24:]),
		}
		switch r.typ {
		case cmdDisc:
			return nil
		case cmdWrite:
			if r.length > MaxPayload {
				// The payload cannot be skipped safely at this size: the
				// stream is no longer trustworthy.
				return fmt.Errorf("write of %d bytes", r.length)
			}
			// Waits while the connection (or the server) holds its share:
			// the client is then no longer read until replies go out.
			buf, err := c.s.bufs.get(c.budget, int(r.length))
			if err != nil {
				return err
			}
			r.data = buf
			if _, err := io.ReadFull(in, r.data); err != nil {
				c.s.bufs.put(c.budget, buf)
				return err
			}
		case cmdRead:
			if r.length <= MaxPayload {
				buf, err := c.s.bufs.get(c.budget, int(r.length))
				if err != nil {
					return err
				}
				r.data = buf
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		c.active.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer c.active.Add(-1)
			c.serve(r)
		}()
	}
}

// serve runs one request and sends its reply.
func (c *conn) serve(r request) {
	size := uint64(c.exp.Size())
	end := r.off + uint64(r.length)
	beyond := end < r.off || end > size
	var errno uint32
	var payload []byte
	switch r.typ {
	case cmdRead:
		switch {
		case r.length > MaxPayload:
			errno = errInval
		case beyond:
			errno = errInval
		default:
			payload = r.data
			if _, err := c.exp.ReadAt(payload, int64(r.off)); err != nil && !errors.Is(err, io.EOF) {
				errno, payload = errIO, nil
			}
		}
	case cmdWrite:
		switch {
		case beyond:
			errno = errNoSpc
		default:
			if _, err := c.exp.WriteAt(r.data, int64(r.off)); err != nil {
				errno = errIO
			} else if r.flags&cmdFlagFUA != 0 && c.exp.Sync() != nil {
				errno = errIO
			}
		}
	case cmdFlush:
		if c.exp.Sync() != nil {
			errno = errIO
		}
	case cmdTrim:
		switch {
		case beyond:
			errno = errInval
		case c.exp.Trim(int64(r.off), int64(r.length)) != nil:
			errno = errIO
		case r.flags&cmdFlagFUA != 0 && c.exp.Sync() != nil:
			errno = errIO
		}
	case cmdWriteZeroes:
		switch {
		case beyond:
			errno = errNoSpc
		default:
			errno = c.writeZeroes(r)
		}
	default:
		errno = errInval
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 16), magicSimpleRep)
	b = binary.BigEndian.AppendUint32(b, errno)
	b = binary.BigEndian.AppendUint64(b, r.handle)
	c.wmu.Lock()
	bufs := net.Buffers{b}
	if payload != nil {
		bufs = append(bufs, payload)
	}
	// One writev. A client that does not take its reply within the reply
	// timeout loses the connection, and with it what it holds.
	c.c.SetWriteDeadline(time.Now().Add(c.s.opts.ReplyTimeout))
	if _, err := bufs.WriteTo(c.c); err != nil {
		c.c.Close()
	}
	c.wmu.Unlock()
	if r.data != nil {
		c.s.bufs.put(c.budget, r.data)
	}
}

// writeZeroes punches a hole (reads back as zeroes) unless the client asks
// for allocated zeroes (NO_HOLE).
func (c *conn) writeZeroes(r request) uint32 {
	if r.flags&cmdFlagNoHole == 0 {
		if c.exp.Trim(int64(r.off), int64(r.length)) != nil {
			return errIO
		}
	} else {
		zero := c.s.zeroes[:min(int(r.length), len(c.s.zeroes))]
		for off := r.off; off < r.off+uint64(r.length); off += uint64(len(zero)) {
			n := min(uint64(len(zero)), r.off+uint64(r.length)-off)
			if _, err := c.exp.WriteAt(zero[:n], int64(off)); err != nil {
				return errIO
			}
		}
	}
	if r.flags&cmdFlagFUA != 0 && c.exp.Sync() != nil {
		return errIO
	}
	return 0
}
