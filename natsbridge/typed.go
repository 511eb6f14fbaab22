package natsbridge

import "context"

// Typed adapts a function of a decoded Envelope[T] to a Handler. It decodes msg.Data
// with Decode[T] and opts; a message that does not decode (malformed JSON, oversize,
// unknown or missing fields) is not passed to fn: the Bridge counts it in
// Stats.DecodeErrors and dead-letters it at once with reason DeadLetterDecodeError and
// the *DecodeError's Reason in HeaderDeadLetterDecodeReason, and the handler goes on with
// the next message. Cost: one Decode per attempt.
func Typed[T any](fn func(ctx context.Context, env Envelope[T], msg Msg) error, opts DecodeOptions) Handler {
	return func(ctx context.Context, msg Msg) error {
		env, err := Decode[T](msg.Data, opts)
		if err != nil {
			return err
		}
		return fn(ctx, env, msg)
	}
}
