package natsbridge

import (
	"context"
	"net"
	"sync"
	"time"
)

// contextDialer is the nats.go CustomDialer Connect installs so the first connection
// attempt honours the caller's ctx: dials use ctx, and until release is called every
// connection's handshake deadline is clamped to ctx's deadline and forced to the past
// when ctx is cancelled. After release (Connect returned) it dials with a plain timeout,
// as reconnects must not depend on a ctx that has ended.
type contextDialer struct {
	dialer net.Dialer

	mu       sync.Mutex
	ctx      context.Context // nil after release
	stops    []func() bool
	canceled bool
}

func newContextDialer(ctx context.Context, timeout time.Duration) *contextDialer {
	return &contextDialer{dialer: net.Dialer{Timeout: timeout}, ctx: ctx}
}

// Dial implements nats.CustomDialer.
func (d *contextDialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	if ctx == nil {
		return d.dialer.Dial(network, address)
	}
	conn, err := d.dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	cc := &initialConn{Conn: conn, d: d, ctx: ctx}
	stop := context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.canceled = true
		d.mu.Unlock()
		_ = conn.SetDeadline(time.Unix(1, 0))
	})
	d.mu.Lock()
	d.stops = append(d.stops, stop)
	d.mu.Unlock()
	return cc, nil
}

// release ends the initial phase. It reports whether ctx ended while a connection made
// during that phase was open (that connection's deadline may then be in the past, so the
// caller must not use it).
func (d *contextDialer) release() bool {
	d.mu.Lock()
	stops := d.stops
	d.ctx, d.stops = nil, nil
	d.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.canceled
}

func (d *contextDialer) initial() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ctx != nil
}

// initialConn clamps the deadlines nats.go sets during the connect handshake to ctx.
type initialConn struct {
	net.Conn
	d   *contextDialer
	ctx context.Context
}

// SetDeadline implements net.Conn. A zero t (clear) passes through unchanged.
func (c *initialConn) SetDeadline(t time.Time) error {
	if !t.IsZero() && c.d.initial() {
		if c.ctx.Err() != nil {
			t = time.Unix(1, 0)
		} else if dl, ok := c.ctx.Deadline(); ok && dl.Before(t) {
			t = dl
		}
	}
	return c.Conn.SetDeadline(t)
}
