package natsbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// defaultMaxEnvelopeBytes is the size limit Decode applies when DecodeOptions.MaxBytes
// is zero: 64 KiB, far above a game event and far below nats-server's 1 MiB default.
const defaultMaxEnvelopeBytes = 64 << 10

// HeaderMsgID is the NATS header JetStream reads to drop duplicate publishes within a
// stream's duplicate window. PublishWithMsgID sets it to the envelope's ID.
const HeaderMsgID = nats.MsgIdHdr

// Envelope is the typed JSON message every game event travels in. ID, Timestamp, Type and
// Payload are required (Decode rejects a message without them); Sender (who caused the
// event: a player or system id) and Origin (the process instance that published it, used
// to ignore one's own echo) are optional.
//
// The JSON form uses snake_case names:
//
//	{"id":"…","timestamp":"2026-01-02T03:04:05Z","type":"chat.say","sender":"p1","origin":"node-a","payload":{…}}
type Envelope[T any] struct {
	// ID identifies this message (NewEnvelope uses a 22-character NUID); it is the
	// JetStream de-duplication id in PublishWithMsgID.
	ID string `json:"id"`
	// Timestamp is when the event was created, encoded as RFC 3339 with nanoseconds.
	Timestamp time.Time `json:"timestamp"`
	// Type names the payload's schema, such as "chat.say" or "player_entered".
	Type string `json:"type"`
	// Sender is the actor that caused the event (optional).
	Sender string `json:"sender,omitempty"`
	// Origin is the publishing process instance (optional).
	Origin string `json:"origin,omitempty"`
	// Payload is the event body.
	Payload T `json:"payload"`
}

// NewEnvelope returns an envelope of the given type around payload with a fresh ID (a
// NUID from nats.go's nuid package: 22 base-62 characters, ~1e35 values, about 20 ns) and
// the current time in UTC. Set Sender and Origin on the result as needed.
func NewEnvelope[T any](msgType string, payload T) Envelope[T] {
	return Envelope[T]{
		ID:        nuid.Next(),
		Timestamp: time.Now().UTC(),
		Type:      msgType,
		Payload:   payload,
	}
}

// Encode checks that env has an ID, a Type and a non-zero Timestamp and returns its JSON
// form. The error wraps ErrEncode. Cost: one json.Marshal.
func Encode[T any](env Envelope[T]) ([]byte, error) {
	switch {
	case env.ID == "":
		return nil, fmt.Errorf("%w: missing id", ErrEncode)
	case env.Type == "":
		return nil, fmt.Errorf("%w: missing type", ErrEncode)
	case env.Timestamp.IsZero():
		return nil, fmt.Errorf("%w: missing timestamp", ErrEncode)
	}
	data, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	return data, nil
}

// Publish validates subject (no wildcards, see ValidateSubject), encodes env and
// publishes it on nc with HeaderPublishedAt set to the time of the call, so a Bridge
// handling it measures publish→handled latency in Stats (one small header, about 30
// bytes on the wire). Like nats.Conn.Publish it does not wait for the server: the
// message is buffered (also while reconnecting, up to nats.go's reconnect buffer) and
// flushed by nats.go. It returns ctx.Err() if ctx is already done, an error wrapping
// ErrInvalidSubject or ErrEncode, or nats.go's error (nats.ErrConnectionClosed,
// nats.ErrMaxPayload, …) wrapped.
func Publish[T any](ctx context.Context, nc *nats.Conn, subject string, env Envelope[T]) error {
	return publish(ctx, nc, subject, env, false)
}

// PublishWithMsgID is Publish with the Nats-Msg-Id header (HeaderMsgID) set to env.ID
// (next to HeaderPublishedAt), so a JetStream stream capturing subject stores a
// re-published envelope only once within its duplicate window. Headers need a server
// that supports them (2.2+), as Publish's do.
func PublishWithMsgID[T any](ctx context.Context, nc *nats.Conn, subject string, env Envelope[T]) error {
	return publish(ctx, nc, subject, env, true)
}

func publish[T any](ctx context.Context, nc *nats.Conn, subject string, env Envelope[T], withID bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if nc == nil {
		return fmt.Errorf("%w: nil *nats.Conn", ErrInvalidConfig)
	}
	if err := ValidateSubject(subject); err != nil {
		return err
	}
	data, err := Encode(env)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: make(nats.Header, 2)}
	SetPublishedAt(msg, time.Now())
	if withID {
		msg.Header[HeaderMsgID] = []string{env.ID}
	}
	if err := nc.PublishMsg(msg); err != nil {
		return fmt.Errorf("natsbridge: publish on %q: %w", subject, err)
	}
	return nil
}

// DecodeOptions tunes Decode. The zero value is ready to use.
type DecodeOptions struct {
	// MaxBytes is the largest input Decode parses; larger input is rejected before any
	// parsing with ReasonOversize. Zero or negative means 64 KiB.
	MaxBytes int
}

// DecodeReason classifies why Decode rejected a message. Its string form is stable and
// fit for a header or a metric label.
type DecodeReason string

// The reasons Decode reports.
const (
	// ReasonOversize: the input is longer than DecodeOptions.MaxBytes.
	ReasonOversize DecodeReason = "oversize"
	// ReasonMalformed: not a single JSON object of the envelope's shape (syntax error,
	// wrong type for a field, trailing data after the object).
	ReasonMalformed DecodeReason = "malformed"
	// ReasonUnknownField: a field the envelope (or its payload type) does not define.
	ReasonUnknownField DecodeReason = "unknown_field"
	// ReasonMissingField: a required field (id, timestamp, type, payload) is absent,
	// null or empty.
	ReasonMissingField DecodeReason = "missing_field"
)

// DecodeError is the only error type Decode returns. errors.Is(err, ErrDecode) holds
// for every *DecodeError; Err, when set, is the underlying encoding/json error.
type DecodeError struct {
	// Reason classifies the failure.
	Reason DecodeReason
	// Field names the offending field when known: the unknown or missing field's name,
	// or the JSON path of a field with the wrong type ("payload.hp").
	Field string
	// Err is the underlying cause, or nil.
	Err error
}

// Error describes the failure without quoting the message's content.
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString(ErrDecode.Error())
	b.WriteString(": ")
	b.WriteString(string(e.Reason))
	if e.Field != "" {
		b.WriteString(" (field ")
		b.WriteString(strconv.Quote(e.Field))
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is reports whether target is ErrDecode.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

// Unwrap returns the underlying cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// wireEnvelope mirrors Envelope with pointers so that absent and null fields can be told
// apart from present ones.
type wireEnvelope[T any] struct {
	ID        *string    `json:"id"`
	Timestamp *time.Time `json:"timestamp"`
	Type      *string    `json:"type"`
	Sender    string     `json:"sender"`
	Origin    string     `json:"origin"`
	Payload   *T         `json:"payload"`
}

// Decode parses one JSON envelope with payload type T in one pass of encoding/json. It
// rejects oversize input before parsing, anything but exactly one JSON object, unknown
// fields at any depth and missing required fields with a *DecodeError whose Reason says
// which (errors.Is(err, ErrDecode)). A json.RawMessage payload defers payload decoding
// to the caller (to route by Type).
func Decode[T any](data []byte, opts DecodeOptions) (Envelope[T], error) {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = defaultMaxEnvelopeBytes
	}
	if len(data) > limit {
		return Envelope[T]{}, &DecodeError{
			Reason: ReasonOversize,
			Err:    fmt.Errorf("%d bytes exceeds the limit of %d", len(data), limit),
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w wireEnvelope[T]
	if err := dec.Decode(&w); err != nil {
		return Envelope[T]{}, classifyJSONError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Envelope[T]{}, &DecodeError{Reason: ReasonMalformed, Err: errors.New("trailing data after the envelope object")}
	}
	switch {
	case w.ID == nil || *w.ID == "":
		return Envelope[T]{}, &DecodeError{Reason: ReasonMissingField, Field: "id"}
	case w.Timestamp == nil || w.Timestamp.IsZero():
		return Envelope[T]{}, &DecodeError{Reason: ReasonMissingField, Field: "timestamp"}
	case w.Type == nil || *w.Type == "":
		return Envelope[T]{}, &DecodeError{Reason: ReasonMissingField, Field: "type"}
	case w.Payload == nil:
		return Envelope[T]{}, &DecodeError{Reason: ReasonMissingField, Field: "payload"}
	}
	return Envelope[T]{
		ID:        *w.ID,
		Timestamp: *w.Timestamp,
		Type:      *w.Type,
		Sender:    w.Sender,
		Origin:    w.Origin,
		Payload:   *w.Payload,
	}, nil
}

// unknownFieldPrefix is how encoding/json words DisallowUnknownFields failures; it has no
// typed error for them.
const unknownFieldPrefix = "json: unknown field "

func classifyJSONError(err error) *DecodeError {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, unknownFieldPrefix); ok {
		field, uerr := strconv.Unquote(rest)
		if uerr != nil {
			field = ""
		}
		return &DecodeError{Reason: ReasonUnknownField, Field: field, Err: err}
	}
	if i := strings.Index(msg, "unknown field "); i >= 0 {
		// Other encoding/json implementations (GOEXPERIMENT=jsonv2) word it differently.
		return &DecodeError{Reason: ReasonUnknownField, Err: err}
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return &DecodeError{Reason: ReasonMalformed, Field: typeErr.Field, Err: err}
	}
	if errors.Is(err, io.EOF) {
		return &DecodeError{Reason: ReasonMalformed, Err: errors.New("empty input")}
	}
	return &DecodeError{Reason: ReasonMalformed, Err: err}
}
