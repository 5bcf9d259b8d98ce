package tlspsk

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Conn is an established TLS-PSK connection. Reads and writes may run in
// separate goroutines at once.
type Conn struct {
	net.Conn
	identity string
	suite    uint16

	rmu     sync.Mutex
	in      recordReader
	pending []byte // decrypted application data not yet read
	rerr    error

	out  recordWriter // its own mutex
	werr error
}

// Identity is the PSK identity the client proved it holds the key of.
func (c *Conn) Identity() string { return c.identity }

// CipherSuite is the suite in use.
func (c *Conn) CipherSuite() uint16 { return c.suite }

// Read returns decrypted application data; io.EOF after the peer's
// close_notify.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.pending) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		typ, body, err := c.in.next()
		if err != nil {
			var a alertError
			if errors.As(err, &a) && !a.received {
				c.fatal(a.desc)
			}
			c.rerr = err
			continue
		}
		switch typ {
		case typeApplicationData:
			c.pending = body
		case typeAlert:
			if len(body) != 2 {
				c.fatal(alertDecodeError)
				c.rerr = alertError{desc: alertDecodeError}
				continue
			}
			switch {
			case body[1] == alertCloseNotify:
				c.rerr = io.EOF
			case body[0] == alertLevelFatal:
				c.rerr = alertError{desc: body[1], received: true}
			}
			// Other warnings are ignored (RFC 5246 7.2).
		case typeHandshake:
			// A ClientHello after the handshake asks to renegotiate.
			c.fatal(alertNoRenegotiation)
			c.rerr = errRenegotiation
		default:
			c.fatal(alertUnexpectedMessage)
			c.rerr = alertError{desc: alertUnexpectedMessage}
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *Conn) fatal(desc uint8) {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	c.out.sendAlert(alertLevelFatal, desc)
}

// Write encrypts p into records.
func (c *Conn) Write(p []byte) (int, error) {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if err := c.out.write(typeApplicationData, p); err != nil {
		c.werr = err
		return 0, err
	}
	return len(p), nil
}

// Close sends close_notify, unless a write is under way, and closes the
// connection.
func (c *Conn) Close() error {
	if c.out.mu.TryLock() {
		if c.werr == nil {
			c.out.sendAlert(alertLevelWarning, alertCloseNotify)
			c.werr = net.ErrClosed
		}
		c.out.mu.Unlock()
	}
	return c.Conn.Close()
}
