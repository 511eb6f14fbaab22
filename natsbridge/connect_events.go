package natsbridge

import (
	"crypto/x509"
	"errors"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// composeHandlers returns the option that sets each connection event handler the
// caller's options set to Connect's handler followed by the caller's.
func composeHandlers(ours, theirs nats.Options) nats.Option {
	return func(o *nats.Options) error {
		if a, b := ours.ConnectedCB, theirs.ConnectedCB; a != nil && b != nil {
			o.ConnectedCB = func(nc *nats.Conn) { a(nc); b(nc) }
		}
		if a, b := ours.DisconnectedErrCB, theirs.DisconnectedErrCB; a != nil && b != nil {
			o.DisconnectedErrCB = func(nc *nats.Conn, err error) { a(nc, err); b(nc, err) }
		}
		if a, b := ours.ReconnectedCB, theirs.ReconnectedCB; a != nil && b != nil {
			o.ReconnectedCB = func(nc *nats.Conn) { a(nc); b(nc) }
		}
		if a, b := ours.ClosedCB, theirs.ClosedCB; a != nil && b != nil {
			o.ClosedCB = func(nc *nats.Conn) { a(nc); b(nc) }
		}
		if a, b := ours.LameDuckModeHandler, theirs.LameDuckModeHandler; a != nil && b != nil {
			o.LameDuckModeHandler = func(nc *nats.Conn) { a(nc); b(nc) }
		}
		if a, b := ours.AsyncErrorCB, theirs.AsyncErrorCB; a != nil && b != nil {
			o.AsyncErrorCB = func(nc *nats.Conn, sub *nats.Subscription, err error) { a(nc, sub, err); b(nc, sub, err) }
		}
		return nil
	}
}

// eventHandlers logs nats.go's connection events through c.Logger. nats.go calls them
// one at a time from its callback goroutine, in event order.
//
// A disconnect is a warning only when something went wrong: nats.go reports the error
// of a lost connection, or closes the connection after one (LastError, e.g. with
// nats.NoReconnect). The disconnect that every deliberate Close (or Drain, or
// ForceReconnect) causes carries no error and is logged at debug level; the close
// itself is logged at info level by the closed handler.
func (c ConnectConfig) eventHandlers(events *connEvents) []nats.Option {
	log, red := c.Logger, events.red
	withErr := func(ev *zerolog.Event, err error) *zerolog.Event {
		if err == nil {
			return ev
		}
		return ev.Str("error", errText(red.redact(err.Error()), err))
	}
	remember, lost := events.remember, events.lastServer
	return []nats.Option{
		nats.ConnectHandler(remember),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil && nc.IsClosed() {
				err = nc.LastError() // closed because of an error, not on request
			}
			if err != nil {
				withErr(log.Warn().Str("event", "disconnect").Str("url", lost()), err).
					Msg("nats disconnected")
				return
			}
			log.Debug().Str("event", "disconnect").Str("url", lost()).Bool("closed", nc.IsClosed()).
				Msg("nats disconnected on request")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			remember(nc)
			log.Info().Str("event", "reconnect").Str("url", red.redact(nc.ConnectedUrl())).
				Str("server_id", nc.ConnectedServerId()).Uint64("reconnects", nc.Stats().Reconnects).
				Msg("nats reconnected")
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			// A connection closed on request has no LastError: no error field then.
			withErr(log.Info().Str("event", "close"), nc.LastError()).Msg("nats connection closed")
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			log.Warn().Str("event", "lame_duck").Str("url", red.redact(nc.ConnectedUrl())).
				Msg("nats server entering lame duck mode")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := withErr(log.Error().Str("event", "async_error"), err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("nats asynchronous error")
		}),
	}
}

// connEvents is the state Connect's event handlers share: the server last connected
// to, redacted. nats.go's ConnectedUrl is empty by the time the disconnect handler runs,
// and its connect and reconnect handlers run on its callback goroutine, possibly after
// the connection was lost again; so Connect also records the server as soon as it
// returns.
type connEvents struct {
	red     redactor
	lastURL atomic.Pointer[string]
}

func newConnEvents(red redactor) *connEvents { return &connEvents{red: red} }

// remember records nc's current server, if it is connected.
func (e *connEvents) remember(nc *nats.Conn) {
	if u := nc.ConnectedUrl(); u != "" {
		r := e.red.redact(u)
		e.lastURL.Store(&r)
	}
}

// lastServer returns the server last connected to, redacted ("" if none yet).
func (e *connEvents) lastServer() string {
	if u := e.lastURL.Load(); u != nil {
		return *u
	}
	return ""
}

// connectHint adds a short remedy to the connection errors people hit most.
func connectHint(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return " (the server certificate is not signed by a trusted CA: set CAFile to the CA that signed it)"
	case errors.As(err, &hostname):
		return " (the server certificate does not name this server: check the URL host or ServerName)"
	case errors.Is(err, nats.ErrAuthorization):
		return " (check User/Password, Token, NKeySeedFile or CredsFile)"
	case errors.Is(err, nats.ErrSecureConnWanted):
		return " (TLS is configured but the server does not offer it)"
	case errors.Is(err, nats.ErrNoServers):
		return " (no server accepted the connection)"
	}
	return ""
}

// errorReason is err's text for embedding in another error.
func errorReason(err error) string { return err.Error() }

// redactedError carries a credential-free message for err while keeping err in the
// chain for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
