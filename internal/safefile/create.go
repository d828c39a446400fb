package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Modes of what meshtrace writes: only its caller reads a bundle (it
// holds the node's firewall, conntrack table and Docker metadata).
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// createFlags never write through a link nor into an existing file.
const createFlags = os.O_WRONLY | os.O_CREATE | os.O_EXCL | oNofollow

// Create creates the file at path for writing, mode 0600. It refuses a
// path that exists (a file or a link, planted or not): nothing is ever
// overwritten.
func Create(path string) (*os.File, error) {
	f, err := os.OpenFile(path, createFlags, FileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil, existsError(path)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// CheckNew says, before any work is done, that Create(path) will refuse
// an existing path.
func CheckNew(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return existsError(path)
	}
	return nil
}

func existsError(path string) error {
	return &Error{Path: path, Err: errors.New("exists: refusing to overwrite it (remove it or name a new file)")}
}

// OutDir is a directory meshtrace writes into, everything created inside
// it new: directories 0700, files 0600, never through a link (os.Root
// keeps every name inside it).
type OutDir struct {
	root *os.Root
	path string
}

// CreateDir makes the output directory at path (its missing parents
// too, 0700), or accepts an existing one only when it is a real directory
// (not a link), owned by the caller and empty; it is then made 0700 so
// nobody else can plant anything in it, and checked empty again.
func CreateDir(path string) (*OutDir, error) {
	if err := os.MkdirAll(filepath.Dir(path), DirMode); err != nil {
		return nil, err
	}
	err := os.Mkdir(path, DirMode)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	st, lerr := os.Lstat(path)
	if lerr != nil {
		return nil, lerr
	}
	if err != nil { // it existed
		if err := acceptExisting(path, st); err != nil {
			return nil, err
		}
	}
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	d := &OutDir{root: r, path: path}
	// The directory opened must be the one checked (not a link swapped
	// in since).
	if rst, err := r.Stat("."); err != nil || !os.SameFile(st, rst) {
		r.Close()
		return nil, &Error{Path: path, Err: errors.New("changed while it was opened (refused)")}
	}
	if err := r.Chmod(".", DirMode); err != nil {
		r.Close()
		return nil, &Error{Path: path, Err: err}
	}
	if err := d.empty(); err != nil {
		r.Close()
		return nil, err
	}
	return d, nil
}

// acceptExisting says why an existing path is not an output directory.
func acceptExisting(path string, st fs.FileInfo) error {
	if st.Mode()&fs.ModeSymlink != 0 {
		return &Error{Path: path, Err: errors.New("is a link: refusing to write through it (name a new directory)")}
	}
	if !st.IsDir() {
		return &Error{Path: path, Err: errors.New("exists and is not a directory")}
	}
	if uid, ok := owner(st); ok && uid != euid() {
		return &Error{Path: path, Err: fmt.Errorf("is owned by uid %d, not by us (uid %d): refusing to write into it (name a new directory)", uid, euid())}
	}
	return nil
}

func (d *OutDir) empty() error {
	f, err := d.root.Open(".")
	if err != nil {
		return &Error{Path: d.path, Err: err}
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return &Error{Path: d.path, Err: errors.New("is not empty: refusing to write into it (name a new or empty directory)")}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return &Error{Path: d.path, Err: err}
	}
	return nil
}

// Path is the directory's path as given.
func (d *OutDir) Path() string { return d.path }

// Close releases the directory.
func (d *OutDir) Close() error { return d.root.Close() }

// Mkdir creates the directory name (slash-separated, inside d), 0700. It
// fails when name exists.
func (d *OutDir) Mkdir(name string) error {
	if err := d.root.Mkdir(name, DirMode); err != nil {
		return d.err(name, err)
	}
	return nil
}

// WriteFile creates the file name inside d, 0600, and writes data. It
// fails when name exists (a file or a link).
func (d *OutDir) WriteFile(name string, data []byte) error {
	f, err := d.root.OpenFile(name, createFlags, FileMode)
	if err != nil {
		return d.err(name, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return d.err(name, err)
	}
	return nil
}

func (d *OutDir) err(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Error{Path: filepath.Join(d.path, filepath.FromSlash(name)), Err: err}
}
