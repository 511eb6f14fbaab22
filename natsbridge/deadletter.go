package natsbridge

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// DeadLetterReason says why a message was dead-lettered (HeaderDeadLetterReason).
type DeadLetterReason string

// The reasons the Bridge writes in HeaderDeadLetterReason.
const (
	// DeadLetterHandlerError: the handler returned an error that was not Retryable, or
	// was Retryable and the last attempt failed too.
	DeadLetterHandlerError DeadLetterReason = "handler_error"
	// DeadLetterPanic: the handler panicked (not retried).
	DeadLetterPanic DeadLetterReason = "panic"
	// DeadLetterDecodeError: a Typed handler could not decode the envelope; the
	// DecodeReason is in HeaderDeadLetterDecodeReason.
	DeadLetterDecodeError DeadLetterReason = "decode_error"
	// DeadLetterOverflow: the message arrived while the buffer was full (see
	// OverflowDeadLetter); the handler never saw it.
	DeadLetterOverflow DeadLetterReason = "overflow"
	// DeadLetterTimeout: the last attempt's context deadline (HandlerTimeout) expired.
	DeadLetterTimeout DeadLetterReason = "timeout"
)

// Headers the Bridge adds to a dead letter, next to the original message's headers
// (its Nats-* headers renamed with headerDeadLetterNATSPrefix). The dead letter's data
// is the original payload, unchanged.
const (
	// HeaderDeadLetterSubject is the subject the message was originally published to.
	HeaderDeadLetterSubject = "Gp-Dl-Subject"
	// HeaderDeadLetterReason is a DeadLetterReason.
	HeaderDeadLetterReason = "Gp-Dl-Reason"
	// HeaderDeadLetterDecodeReason is the DecodeReason, for DeadLetterDecodeError.
	HeaderDeadLetterDecodeReason = "Gp-Dl-Decode-Reason"
	// HeaderDeadLetterError is the last error's text (one line, at most 512 bytes).
	HeaderDeadLetterError = "Gp-Dl-Error"
	// HeaderDeadLetterAttempts is the number of handler calls made (0 for overflow).
	HeaderDeadLetterAttempts = "Gp-Dl-Attempts"
	// HeaderDeadLetterHandler is the registration's name (see Name).
	HeaderDeadLetterHandler = "Gp-Dl-Handler"
	// HeaderDeadLetterFirstSeen is when the Bridge received the message (RFC 3339, ns).
	HeaderDeadLetterFirstSeen = "Gp-Dl-First-Seen"
	// HeaderDeadLetterOrigin is the Config.Origin of the Bridge that dead-lettered it.
	HeaderDeadLetterOrigin = "Gp-Dl-Origin"
	// HeaderReplayOf is set by Replay on a re-published message: "<stream>:<sequence>"
	// of the dead letter it came from.
	HeaderReplayOf = "Gp-Replay-Of"
	// headerDeadLetterNATSPrefix prefixes the original message's "Nats-*" headers on
	// its dead letter ("Nats-Msg-Id" → "Gp-Dl-Nats-Msg-Id"). The server acts on those
	// headers when a stream stores the message (duplicate detection, expected
	// stream/sequence, rollup, TTL), so kept as they were they would make the
	// dead-letter stream drop or reject the dead letter, or purge others. Replay puts
	// them back under their own names.
	headerDeadLetterNATSPrefix = "Gp-Dl-"
)

// natsHeaderPrefix starts the header names nats-server interprets on publish.
const natsHeaderPrefix = "nats-"

// isNATSHeader reports whether k is a header the server may act on ("Nats-*", any case).
func isNATSHeader(k string) bool {
	return len(k) >= len(natsHeaderPrefix) && strings.EqualFold(k[:len(natsHeaderPrefix)], natsHeaderPrefix)
}

// maxErrorHeader bounds HeaderDeadLetterError.
const maxErrorHeader = 512

// deadLetter is one dead letter waiting to be published.
type deadLetter struct {
	subject      string
	data         []byte
	header       nats.Header
	handler      string
	reason       DeadLetterReason
	decodeReason DecodeReason
	errText      string
	attempts     int
	firstSeen    time.Time
	// done, if not nil, is told once whether the stream stored the dead letter (a
	// durable message is terminated only then, else nak'ed for redelivery). It is
	// called from the publisher goroutine, or from put's caller when the buffer is full.
	done func(stored bool)
}
