package natsbridge

import "context"

// Handler processes one message. Returning nil marks it handled; returning an error
// marked with Retryable asks for another attempt; any other error dead-letters the
// message at once. ctx carries the per-attempt deadline (Config.HandlerTimeout) and is
// cancelled when the Bridge closes; it is a standard library context (deriving from it
// starts no goroutine), and context.Cause(ctx) is ErrHandlerTimeout (wrapping
// context.DeadlineExceeded) or ErrClosed. A Handler is called concurrently for different keys,
// never concurrently for the same key of the same registration.
type Handler func(ctx context.Context, msg Msg) error

// Middleware wraps a Handler to add behaviour around it (logging, metrics, auth),
// watermill-style. It is applied once, at registration, so it costs one extra call per
// message.
type Middleware func(Handler) Handler

// Chain wraps h in mws so that mws[0] is the outermost: Chain(h, a, b) runs a, then b,
// then h. Nil middleware are skipped.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		if mws[i] != nil {
			h = mws[i](h)
		}
	}
	return h
}
