// Package collect is `meshtrace swarm collect`: meshtrace run on every node
// of a swarm as a global job (the Docker API, no ssh, no agent of ours),
// each task handing its node's bundle back through the job's logs, and the
// bundles written as DIR/<node>/.
//
// A task writes its bundle on stdout as a frame (Encode): a header line
// naming the node, the bundle as a tar stream in base64 lines, and a
// trailer with its length and SHA-256, the way moby's old ssd tool handed
// its results back through a service's logs. The manager reads each task's
// log and decodes the frame (Decode), which is untrusted input: lines,
// length and entries bounded, every path checked, every file written new
// through internal/safefile.
package collect

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/meshtrace/meshtrace/inspect"
	"github.com/meshtrace/meshtrace/internal/safefile"
)

const (
	headerPrefix = "meshtrace-bundle v1 "
	trailerStart = "meshtrace-bundle end "
	// lineChars is the length of a base64 line: far below the 16 KiB at
	// which Docker's log drivers split a line into partial messages.
	lineChars = 76
	// maxLine bounds every line the decoder reads.
	maxLine = 1024
)

// Limits bound what Decode and Extract accept from a task's log.
type Limits struct {
	Bytes   int64 // the tar stream, decoded (0: DefaultLimits.Bytes)
	Entries int   // files and folders (0: DefaultLimits.Entries)
}

// DefaultLimits are the bounds swarm collect uses unless told otherwise.
var DefaultLimits = Limits{Bytes: 512 << 20, Entries: 200000}

func (l Limits) withDefaults() Limits {
	if l.Bytes <= 0 {
		l.Bytes = DefaultLimits.Bytes
	}
	if l.Entries <= 0 {
		l.Entries = DefaultLimits.Entries
	}
	return l
}

// Header is what a frame says of the node that wrote it.
type Header struct {
	Node string // the node's hostname
	ID   string // the swarm node ID
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
	idRE   = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
)

// SafeName reports whether s can name a node's folder: a host name's
// characters, no separator, not "." or "..".
func SafeName(s string) bool { return nameRE.MatchString(s) && s != "." && s != ".." }

// Encoder writes a frame: NewEncoder writes the header, the sink's
// WriteFile/Mkdir add tar entries, Close writes the trailer.
type Encoder struct {
	*TarSink
	w    io.Writer
	line *lineWriter
	b64  io.WriteCloser
	sum  hashCounter
}

// NewEncoder starts a frame for h on w.
func NewEncoder(w io.Writer, h Header) (*Encoder, error) {
	if !SafeName(h.Node) {
		return nil, fmt.Errorf("frame: node name %q is not a safe folder name", h.Node)
	}
	if h.ID != "" && !idRE.MatchString(h.ID) {
		return nil, fmt.Errorf("frame: node id %q: not a swarm id", h.ID)
	}
	hdr := headerPrefix + "node=" + h.Node
	if h.ID != "" {
		hdr += " id=" + h.ID
	}
	if _, err := io.WriteString(w, hdr+"\n"); err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	e := &Encoder{w: w, line: &lineWriter{w: w}}
	e.sum.h = sha256.New()
	e.b64 = base64.NewEncoder(base64.StdEncoding, e.line)
	e.TarSink = NewTarSink(io.MultiWriter(e.b64, &e.sum))
	return e, nil
}

var (
	_ inspect.BundleSink = (*Encoder)(nil)
	_ inspect.BundleSink = (*TarSink)(nil)
)

// TarSink writes a bundle as a tar stream (collect --stdout-tar).
type TarSink struct {
	tw  *tar.Writer
	now time.Time
}

// NewTarSink starts a tar stream on w.
func NewTarSink(w io.Writer) *TarSink { return &TarSink{tw: tar.NewWriter(w), now: time.Now()} }

// Mkdir adds a folder.
func (t *TarSink) Mkdir(name string) error {
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o700, ModTime: t.now})
}

// WriteFile adds a file.
func (t *TarSink) WriteFile(name string, data []byte) error {
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: t.now}); err != nil {
		return err
	}
	_, err := t.tw.Write(data)
	return err
}

// Close ends the tar stream.
func (t *TarSink) Close() error { return t.tw.Close() }

// Close ends the tar stream and writes the trailer.
func (e *Encoder) Close() error {
	if err := e.TarSink.Close(); err != nil {
		return fmt.Errorf("frame: %w", err)
	}
	if err := e.b64.Close(); err != nil {
		return fmt.Errorf("frame: %w", err)
	}
	if err := e.line.flush(); err != nil {
		return fmt.Errorf("frame: %w", err)
	}
	_, err := fmt.Fprintf(e.w, "%sbytes=%d sha256=%s\n", trailerStart, e.sum.n, hex.EncodeToString(e.sum.h.Sum(nil)))
	return err
}

type hashCounter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// lineWriter cuts the base64 text into lines of lineChars.
type lineWriter struct {
	w   io.Writer
	buf []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(lineChars-len(l.buf), len(p))
		l.buf = append(l.buf, p[:k]...)
		p = p[k:]
		if len(l.buf) == lineChars {
			if err := l.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (l *lineWriter) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.w.Write(append(l.buf, '\n'))
	l.buf = l.buf[:0]
	return err
}

// Frame is a decoded frame: its header and the tar stream it carried.
type Frame struct {
	Header
	Tar []byte
}

// Decode reads the first frame of r (lines before its header are skipped:
// what else the task printed). Every line is bounded, the decoded length
// too, and the trailer's length and SHA-256 must match: a frame cut short
// (a task killed, a log truncated) is an error, never a smaller bundle.
func Decode(r io.Reader, lim Limits) (*Frame, error) {
	lim = lim.withDefaults()
	br := bufio.NewReaderSize(r, maxLine+1)
	lineNo := 0
	partial := false
	readLine := func() (string, error) {
		lineNo++
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("frame: line %d: longer than %d bytes", lineNo, maxLine)
		}
		if err == io.EOF && len(b) > 0 {
			partial = true // a last line without its newline
			err = nil
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	var f Frame
	for {
		l, err := readLine()
		if err == io.EOF {
			return nil, errors.New("frame: no meshtrace-bundle header in the log")
		}
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(l, headerPrefix); ok {
			if f.Header, err = parseHeader(rest); err != nil {
				return nil, fmt.Errorf("frame: line %d: %w", lineNo, err)
			}
			break
		}
	}
	var data bytes.Buffer
	dec := make([]byte, base64.StdEncoding.DecodedLen(maxLine))
	for {
		l, err := readLine()
		if err == io.EOF {
			return nil, fmt.Errorf("frame: node %s: cut short after %d bytes (no trailer)", f.Node, data.Len())
		}
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(l, trailerStart); ok {
			if err := checkTrailer(rest, data.Bytes()); err != nil {
				return nil, fmt.Errorf("frame: node %s: line %d: %w", f.Node, lineNo, err)
			}
			f.Tar = data.Bytes()
			return &f, nil
		}
		if partial { // the log ends inside a line: the frame was cut
			return nil, fmt.Errorf("frame: node %s: cut short after %d bytes (no trailer)", f.Node, data.Len())
		}
		n, err := base64.StdEncoding.Decode(dec, []byte(l))
		if err != nil {
			return nil, fmt.Errorf("frame: node %s: line %d: %w", f.Node, lineNo, err)
		}
		if int64(data.Len()+n) > lim.Bytes {
			return nil, fmt.Errorf("frame: node %s: %w", f.Node, &safefile.LimitError{Limit: lim.Bytes})
		}
		data.Write(dec[:n])
	}
}

func parseHeader(s string) (Header, error) {
	var h Header
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "node":
			h.Node = v
		case "id":
			h.ID = v
		}
	}
	if !SafeName(h.Node) {
		return h, fmt.Errorf("header: node name %q is not a safe folder name", h.Node)
	}
	if h.ID != "" && !idRE.MatchString(h.ID) {
		return h, fmt.Errorf("header: node id %q: not a swarm id", h.ID)
	}
	return h, nil
}

func checkTrailer(s string, data []byte) error {
	var n int64 = -1
	var sum string
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "bytes":
			var err error
			if n, err = strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("trailer: bytes=%q: %w", v, err)
			}
		case "sha256":
			sum = v
		}
	}
	if n != int64(len(data)) {
		return fmt.Errorf("trailer says %d bytes, the frame carried %d", n, len(data))
	}
	got := sha256.Sum256(data)
	if sum != hex.EncodeToString(got[:]) {
		return errors.New("trailer's sha256 does not match the frame's content")
	}
	return nil
}

// Extract writes the frame's tar stream into out: folders and regular
// files only, each name a clean relative path (fs.ValidPath, no
// backslash), each file new (a repeated name is an error), each at most
// safefile.MaxFile, and at most lim.Entries entries. It returns how many
// files it wrote.
func Extract(tarData []byte, out inspect.BundleSink, lim Limits) (int, error) {
	lim = lim.withDefaults()
	tr := tar.NewReader(bytes.NewReader(tarData))
	made := map[string]bool{".": true}
	mkdirAll := func(dir string) error {
		if made[dir] {
			return nil
		}
		var todo []string
		for d := dir; !made[d]; d = path.Dir(d) {
			todo = append(todo, d)
		}
		for i := len(todo) - 1; i >= 0; i-- {
			if err := out.Mkdir(todo[i]); err != nil {
				return err
			}
			made[todo[i]] = true
		}
		return nil
	}
	files, entries := 0, 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return files, fmt.Errorf("bundle tar: %w", err)
		}
		if entries++; entries > lim.Entries {
			return files, fmt.Errorf("bundle tar: more than %d entries", lim.Entries)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !fs.ValidPath(name) || name == "." || strings.Contains(name, `\`) {
			return files, fmt.Errorf("bundle tar: entry %q: not a safe relative path", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := mkdirAll(name); err != nil {
				return files, fmt.Errorf("bundle tar: %w", err)
			}
		case tar.TypeReg:
			if h.Size < 0 || h.Size > safefile.MaxFile {
				return files, fmt.Errorf("bundle tar: entry %q: %w", name, &safefile.LimitError{Limit: safefile.MaxFile})
			}
			if made[name] {
				return files, fmt.Errorf("bundle tar: entry %q: a folder of that name exists", name)
			}
			if err := mkdirAll(path.Dir(name)); err != nil {
				return files, fmt.Errorf("bundle tar: %w", err)
			}
			data, err := io.ReadAll(io.LimitReader(tr, h.Size))
			if err != nil {
				return files, fmt.Errorf("bundle tar: entry %q: %w", name, err)
			}
			if err := out.WriteFile(name, data); err != nil {
				return files, fmt.Errorf("bundle tar: %w", err)
			}
			files++
		default:
			return files, fmt.Errorf("bundle tar: entry %q: type %q is neither a folder nor a regular file", name, h.Typeflag)
		}
	}
}
