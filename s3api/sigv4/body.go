package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Body wraps a request body so that reading it to io.EOF proves it matches
// what the signature covers. For aws-chunked bodies it strips the chunk
// framing; decodedLength (x-amz-decoded-content-length) is then the payload
// size. Trailers of chunked bodies are delivered to onTrailer before EOF
// (which may reject them with an error).
func (a *Auth) Body(r io.Reader, decodedLength int64, onTrailer func(http.Header) error) io.Reader {
	switch a.PayloadHash {
	case UnsignedPayload:
		return r
	case StreamingPayload, StreamingPayloadTrail, StreamingUnsignedTrail:
		return &chunkedReader{
			r: bufio.NewReaderSize(r, 64<<10), auth: a, prevSig: a.signature,
			signed:   a.PayloadHash != StreamingUnsignedTrail,
			trailers: a.PayloadHash != StreamingPayload,
			want:     decodedLength, onTrailer: onTrailer,
		}
	default:
		want, _ := hex.DecodeString(a.PayloadHash)
		return &sha256Reader{r: r, h: sha256.New(), want: want}
	}
}

type sha256Reader struct {
	r    io.Reader
	h    hash.Hash
	want []byte
}

func (s *sha256Reader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	if err == io.EOF && !bytes.Equal(s.h.Sum(nil), s.want) {
		return n, fail("XAmzContentSHA256Mismatch", "the provided 'x-amz-content-sha256' header does not match what was computed")
	}
	return n, err
}

// chunkedReader decodes aws-chunked framing:
//
//	hex-size[;chunk-signature=sig]\r\n data \r\n ... 0[;chunk-signature=sig]\r\n
//	[trailer-name:value\r\n ... [x-amz-trailer-signature:sig\r\n]] \r\n
type chunkedReader struct {
	r         *bufio.Reader
	auth      *Auth
	signed    bool
	trailers  bool
	prevSig   string
	chunkSig  string
	left      int64 // data bytes left in the current chunk
	inChunk   bool
	h         hash.Hash
	total     int64
	want      int64
	done      bool
	err       error
	onTrailer func(http.Header) error
}

const maxChunkLine = 4096

func malformed(msg string) error {
	return fail("IncompleteBody", "malformed aws-chunked body: %s", msg)
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		if err := c.nextChunk(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	if c.signed {
		c.h.Write(p[:n])
	}
	c.left -= int64(n)
	c.total += int64(n)
	if err == io.EOF {
		err = malformed("body ends inside a chunk")
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

// readLine reads one framing line. Chunk headers must end in CRLF;
// trailer lines (loose) may end in LF alone, as some clients send them.
func (c *chunkedReader) readLine(loose bool) (string, error) {
	var b []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		b = append(b, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) && len(b) < maxChunkLine {
			continue
		}
		if err == io.EOF {
			return "", malformed("body ends inside chunk framing")
		}
		return "", malformed("chunk line too long")
	}
	if len(b) > maxChunkLine {
		return "", malformed("chunk line too long")
	}
	line := string(b[:len(b)-1])
	if loose {
		return strings.TrimSuffix(line, "\r"), nil
	}
	if !strings.HasSuffix(line, "\r") {
		return "", malformed("chunk line not terminated by CRLF")
	}
	return line[:len(line)-1], nil
}

func (c *chunkedReader) line() (string, error)      { return c.readLine(false) }
func (c *chunkedReader) looseLine() (string, error) { return c.readLine(true) }

func (c *chunkedReader) verifyChunk() error {
	if !c.signed {
		return nil
	}
	sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + c.auth.date + "\n" + c.auth.scope + "\n" + c.prevSig + "\n" + EmptySHA256 + "\n" + hex.EncodeToString(c.h.Sum(nil))
	want := hmacHex(c.auth.signingKey, sts)
	if !hmac.Equal([]byte(want), []byte(c.chunkSig)) {
		return fail("SignatureDoesNotMatch", "chunk signature does not match")
	}
	c.prevSig = c.chunkSig
	return nil
}

// nextChunk finishes the chunk just read and parses the next header.
func (c *chunkedReader) nextChunk() error {
	if c.inChunk {
		if err := c.verifyChunk(); err != nil {
			return err
		}
		l, err := c.line()
		if err != nil {
			return err
		}
		if l != "" {
			return malformed("chunk data longer than its size")
		}
	}
	l, err := c.line()
	if err != nil {
		return err
	}
	sizeStr, ext, _ := strings.Cut(l, ";")
	size, err := strconv.ParseInt(sizeStr, 16, 64)
	if err != nil || size < 0 {
		return malformed("bad chunk size")
	}
	if c.signed {
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !ok || len(sig) != 64 {
			return fail("SignatureDoesNotMatch", "chunk without a signature")
		}
		c.chunkSig = sig
	}
	if c.h == nil {
		c.h = sha256.New()
	}
	c.h.Reset()
	c.inChunk, c.left = true, size
	if size > 0 {
		return nil
	}
	// The final chunk: verify it, then read trailers.
	if err := c.verifyChunk(); err != nil {
		return err
	}
	c.inChunk = false
	if err := c.readTrailers(); err != nil {
		return err
	}
	if c.want >= 0 && c.total != c.want {
		return fail("IncompleteBody", "decoded body is %d bytes, x-amz-decoded-content-length says %d", c.total, c.want)
	}
	c.done = true
	return nil
}

// readTrailers reads the trailer section after the final chunk. Clients
// differ in line endings here (minio-go ends trailer lines with LF and puts
// a blank line before the signature line), so lines may end in LF or CRLF;
// a signed trailer section ends at the blank line after its signature, an
// unsigned one at its first blank line.
func (c *chunkedReader) readTrailers() error {
	trailer := http.Header{}
	var canon strings.Builder
	var trailerSig string
	signed := c.signed && c.trailers
	for {
		l, err := c.looseLine()
		if err != nil {
			if !c.trailers && c.r.Buffered() == 0 {
				// Some clients end a plain chunked body right after "0\r\n".
				return nil
			}
			return err
		}
		if l == "" {
			if !signed || trailerSig != "" {
				break
			}
			continue // the blank line before the signature line
		}
		if !c.trailers {
			return malformed("trailer in a body that declared none")
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return malformed("bad trailer line")
		}
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			trailerSig = value
			continue
		}
		if trailerSig != "" {
			return malformed("trailer after the trailer signature")
		}
		trailer.Add(name, value)
		canon.WriteString(name + ":" + value + "\n")
	}
	if signed {
		sts := "AWS4-HMAC-SHA256-TRAILER\n" + c.auth.date + "\n" + c.auth.scope + "\n" + c.prevSig + "\n" + sha256Hex(canon.String())
		if !hmac.Equal([]byte(hmacHex(c.auth.signingKey, sts)), []byte(trailerSig)) {
			return fail("SignatureDoesNotMatch", "trailer signature does not match")
		}
	}
	if c.onTrailer != nil && len(trailer) > 0 {
		return c.onTrailer(trailer)
	}
	return nil
}
