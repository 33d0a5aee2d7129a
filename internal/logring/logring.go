// Package logring keeps a node's most recent log lines in memory, for
// /debug/logs and the support bundle: a zapcore.Core teed next to the
// node's own output, holding the last N encoded entries.
package logring

import (
	"strings"
	"sync"

	"go.uber.org/zap/zapcore"
)

// Ring holds the last lines written to it.
type Ring struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

// New keeps the last n lines (at least 1).
func New(n int) *Ring { return &Ring{lines: make([]string, max(n, 1))} }

func (r *Ring) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = s
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
}

// Lines are the lines held, oldest first.
func (r *Ring) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]string(nil), r.lines[:r.next]...)
	}
	return append(append([]string(nil), r.lines[r.next:]...), r.lines[:r.next]...)
}

// Core is a zapcore.Core writing the entries level enables into the ring,
// encoded as console lines with cfg.
func (r *Ring) Core(cfg zapcore.EncoderConfig, level zapcore.LevelEnabler) zapcore.Core {
	return &core{LevelEnabler: level, enc: zapcore.NewConsoleEncoder(cfg), ring: r}
}

type core struct {
	zapcore.LevelEnabler
	enc  zapcore.Encoder
	ring *Ring
}

func (c *core) With(fields []zapcore.Field) zapcore.Core {
	enc := c.enc.Clone()
	for _, f := range fields {
		f.AddTo(enc)
	}
	return &core{LevelEnabler: c.LevelEnabler, enc: enc, ring: c.ring}
}

func (c *core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *core) Write(e zapcore.Entry, fields []zapcore.Field) error {
	buf, err := c.enc.EncodeEntry(e, fields)
	if err != nil {
		return err
	}
	c.ring.add(strings.TrimRight(buf.String(), "\n"))
	buf.Free()
	return nil
}

func (c *core) Sync() error { return nil }
