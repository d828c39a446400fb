// Package safefile is the one door through which meshtrace opens the files
// other people give it (a bundle's command outputs and Docker JSON, capture
// files) and creates the files it writes (a bundle, a pcapng).
//
// Reading: only regular files are read. Inside a directory (a bundle) a
// name must resolve inside it: a link that leads out of it is refused
// before anything is opened (os.Root does the resolution), so no byte of
// its target is read or printed. FIFOs, sockets and devices are refused by
// their mode before they are opened, and a file is opened non-blocking
// (a FIFO swapped in between never hangs the open; a regular file ignores
// the flag) and checked again. Each
// file is read through a limited reader that stops at a byte limit, so an
// endless file (one whose size says 0, as in /proc) ends with an error
// naming the limit; a file whose size is already past the limit is refused
// before it is read.
//
// Writing: see create.go.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MaxFile is the most meshtrace reads from one bundle file: some hundred
// times a busy node's largest output (an iptables-save of tens of
// thousands of rules, a conntrack table of a million entries is a few
// hundred MB).
const MaxFile int64 = 1 << 30

// MaxCapture is the most meshtrace reads from one capture file.
const MaxCapture int64 = 64 << 30

// Errors a refused file wraps (test them with errors.Is).
var (
	// ErrOutside: a name that resolves out of its directory (a link to
	// /etc/shadow, `..`).
	ErrOutside = errors.New("leads out of the directory")
	// ErrNotRegular: a FIFO, socket, device or directory where a file is
	// expected.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: more bytes than the limit.
	ErrTooLarge = errors.New("file too large")
)

// Error is a refused file: the path (as given, joined to its directory)
// and why.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// LimitError is a file that holds more than Limit bytes.
type LimitError struct {
	Limit int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("larger than %s, the most meshtrace reads from one file (refused)", Size(e.Limit))
}

func (e *LimitError) Is(target error) bool { return target == ErrTooLarge }

// Size writes a byte count the way the limits are named (1 GiB, 512 KiB).
func Size(n int64) string {
	for _, u := range []struct {
		unit  string
		shift uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.unit)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// notRegular says what a mode is instead of a regular file.
func notRegular(m fs.FileMode) error {
	what := "something else"
	switch {
	case m&fs.ModeNamedPipe != 0:
		what = "a FIFO"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeCharDevice != 0:
		what = "a character device"
	case m&fs.ModeDevice != 0:
		what = "a block device"
	case m.IsDir():
		what = "a directory"
	}
	return fmt.Errorf("is %s, %w (refused: meshtrace reads only regular files)", what, ErrNotRegular)
}

// File is a regular file open for reading through its limit.
type File struct {
	f     *os.File
	name  string
	limit int64
	read  int64
	st    fs.FileInfo // as opened
}

// Read reads at most the limit; past it, it returns a *LimitError (the
// reader's caller names the file: parsers say file and line).
func (f *File) Read(p []byte) (int, error) {
	if f.read >= f.limit {
		// More bytes tell a file of exactly the limit from a longer one
		// (8 of them: /proc's pagemap reads only whole entries).
		var more [8]byte
		n, err := f.f.Read(more[:])
		if n > 0 {
			return 0, &LimitError{Limit: f.limit}
		}
		return 0, err
	}
	if rest := f.limit - f.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := f.f.Read(p)
	f.read += int64(n)
	return n, err
}

// Name is the path the file was opened by.
func (f *File) Name() string { return f.name }

// Stat returns the file's information as it was when opened.
func (f *File) Stat() (fs.FileInfo, error) { return f.st, nil }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// Open opens a regular file named by the user (a capture file) for
// reading through limit. Links are followed: the user chose the path.
func Open(path string, limit int64) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err // *fs.PathError names the path
	}
	if !st.Mode().IsRegular() {
		return nil, &Error{Path: path, Err: notRegular(st.Mode())}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock|oNoctty, 0)
	if err != nil {
		return nil, err
	}
	return checkOpened(f, path, st, limit)
}

// checkOpened makes sure the file opened is the regular file stat saw
// (not something swapped in between; st nil: a file its directory's
// listing said was regular) and not already past the limit.
func checkOpened(f *os.File, path string, st fs.FileInfo, limit int64) (*File, error) {
	fst, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &Error{Path: path, Err: err}
	}
	if !fst.Mode().IsRegular() {
		f.Close()
		return nil, &Error{Path: path, Err: notRegular(fst.Mode())}
	}
	if st != nil && !os.SameFile(st, fst) {
		f.Close()
		return nil, &Error{Path: path, Err: errors.New("changed while it was opened (refused)")}
	}
	if fst.Size() > limit {
		f.Close()
		return nil, &Error{Path: path, Err: &LimitError{Limit: limit}}
	}
	return &File{f: f, name: path, limit: limit, st: fst}, nil
}

// ReadAll reads r (a *File) to its end, in one allocation when its size
// holds (a bundle's docker/*.json runs to megabytes).
func ReadAll(f *File) ([]byte, error) {
	b, err := readAll(f)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, err
		}
		return nil, &Error{Path: f.name, Err: err}
	}
	return b, nil
}

// Dir is a directory whose files are read only from inside it (a bundle).
type Dir struct {
	root  *os.Root
	path  string
	limit int64
	// names, when set (Sub), are the entries the directory held when it
	// was opened, each with whether it was a regular file: a name it did
	// not hold is not there, without a lookup, and a regular file is
	// opened without a look first.
	names map[string]bool
}

// OpenDir opens the directory at path; its files are read through limit
// (MaxFile when 0).
func OpenDir(path string, limit int64) (*Dir, error) {
	if limit <= 0 {
		limit = MaxFile
	}
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	return &Dir{root: r, path: path, limit: limit}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Path is the directory's path as given.
func (d *Dir) Path() string { return d.path }

// Join is the path of name inside the directory, for messages.
func (d *Dir) Join(name string) string { return filepath.Join(d.path, filepath.FromSlash(name)) }

// Stat returns the information of name, following links that stay
// inside the directory. A name that resolves out of it is an *Error
// wrapping ErrOutside; a missing one wraps fs.ErrNotExist.
func (d *Dir) Stat(name string) (fs.FileInfo, error) {
	if _, listed := d.names[name]; d.names != nil && !listed && name != "." && name != "" && !strings.ContainsRune(name, '/') {
		return nil, &Error{Path: d.Join(name), Err: fs.ErrNotExist}
	}
	st, err := d.root.Stat(name)
	if err != nil {
		return nil, d.pathError(name, err)
	}
	return st, nil
}

// pathError names the whole path of name in err, and says plainly that a
// name escaping the directory was refused (without following it).
func (d *Dir) pathError(name string, err error) error {
	full := d.Join(name)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if isEscape(err) {
		what := "is a link that"
		if target, lerr := d.root.Readlink(name); lerr == nil {
			what = fmt.Sprintf("is a link (to %s) that", target)
		}
		return &Error{Path: full, Err: fmt.Errorf("%s %w %s (refused: meshtrace reads only files inside it)", what, ErrOutside, d.path)}
	}
	return &Error{Path: full, Err: err}
}

// isEscape recognises os.Root's refusal of a path that leaves it (its
// error is not exported; TestEscapeRecognised pins the text).
func isEscape(err error) bool {
	return err != nil && err.Error() == "path escapes from parent"
}

// Open opens the regular file name inside the directory for reading
// through the directory's limit. A missing file's error wraps
// fs.ErrNotExist; anything refused is an *Error naming the whole path.
func (d *Dir) Open(name string) (*File, error) {
	full := d.Join(name)
	var st fs.FileInfo
	if !d.names[name] { // not listed as a regular file: look before opening
		var err error
		if st, err = d.Stat(name); err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, &Error{Path: full, Err: notRegular(st.Mode())}
		}
	}
	f, err := d.root.OpenFile(name, os.O_RDONLY|oNonblock|oNoctty, 0)
	if err != nil {
		return nil, d.pathError(name, err)
	}
	return checkOpened(f, full, st, d.limit)
}

// ReadFile reads the regular file name inside the directory.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	f, err := d.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f)
}

// ReadDir lists the directory name inside the directory.
func (d *Dir) ReadDir(name string) ([]fs.DirEntry, error) {
	st, err := d.Stat(name)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, &Error{Path: d.Join(name), Err: errors.New("not a directory")}
	}
	f, err := d.root.Open(name)
	if err != nil {
		return nil, d.pathError(name, err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, &Error{Path: d.Join(name), Err: err}
	}
	return ents, nil
}

// Sub opens the directory name inside d as a Dir of its own, with d's
// limit: a bundle's reader opens each namespace's folder once, and every
// file in it is then one lookup away instead of a walk from d's top. It
// resolves name as Stat does (no link out of d). Sub lists the directory
// once: a name that was not in it then is missing without a lookup (the
// reader asks for a score of optional files, most of them absent).
func (d *Dir) Sub(name string) (*Dir, error) {
	r, err := d.root.OpenRoot(name)
	if err != nil {
		return nil, d.pathError(name, err)
	}
	sub := &Dir{root: r, path: d.Join(name), limit: d.limit}
	f, err := r.Open(".")
	if err != nil {
		r.Close()
		return nil, sub.pathError(".", err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		r.Close()
		return nil, &Error{Path: sub.path, Err: err}
	}
	sub.names = make(map[string]bool, len(ents))
	for _, e := range ents {
		sub.names[e.Name()] = e.Type().IsRegular()
	}
	return sub, nil
}

// Hide makes the entries of d (a Sub) that hide names missing, as if the
// directory had not held them: a reader given d then takes them for not
// there, without opening them. It does nothing on a Dir that is not a Sub.
func (d *Dir) Hide(hide func(name string) bool) {
	for name := range d.names {
		if hide(name) {
			delete(d.names, name)
		}
	}
}

// readAll is io.ReadAll starting from the file's size (plus the read that
// says EOF) instead of 512 bytes.
func readAll(f *File) ([]byte, error) {
	size := int64(512)
	if st, err := f.Stat(); err == nil && st.Size() > 0 && st.Size() < f.limit {
		size = st.Size() + 1
	}
	b := make([]byte, 0, size)
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}
