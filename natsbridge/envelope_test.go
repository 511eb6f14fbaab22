package natsbridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

type sayPayload struct {
	Text  string `json:"text"`
	Color int    `json:"color,omitempty"`
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	env := natsbridge.NewEnvelope("chat.say", sayPayload{Text: "hello", Color: 3})
	env.Sender = "player-1"
	env.Origin = "node-a"
	data, err := natsbridge.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"id":`, `"timestamp":`, `"type":"chat.say"`, `"sender":"player-1"`, `"origin":"node-a"`, `"payload":{"text":"hello","color":3}`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("encoded %s lacks %s", data, key)
		}
	}
	got, err := natsbridge.Decode[sayPayload](data, natsbridge.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != env.ID || !got.Timestamp.Equal(env.Timestamp) || got.Type != env.Type ||
		got.Sender != env.Sender || got.Origin != env.Origin || got.Payload != env.Payload {
		t.Fatalf("round trip: got %+v, want %+v", got, env)
	}
	if len(env.ID) != 22 {
		t.Errorf("id %q: want a 22-character NUID", env.ID)
	}
	if other := natsbridge.NewEnvelope("chat.say", sayPayload{}); other.ID == env.ID {
		t.Error("two envelopes share an id")
	}
}

func TestEncodeRejectsIncompleteEnvelope(t *testing.T) {
	t.Parallel()
	base := natsbridge.NewEnvelope("t", 1)
	cases := map[string]func(*natsbridge.Envelope[int]){
		"id":        func(e *natsbridge.Envelope[int]) { e.ID = "" },
		"type":      func(e *natsbridge.Envelope[int]) { e.Type = "" },
		"timestamp": func(e *natsbridge.Envelope[int]) { e.Timestamp = time.Time{} },
	}
	for name, mutate := range cases {
		env := base
		mutate(&env)
		_, err := natsbridge.Encode(env)
		if !errors.Is(err, natsbridge.ErrEncode) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v, want ErrEncode naming %s", name, err, name)
		}
	}
	_, err := natsbridge.Encode(natsbridge.NewEnvelope("t", make(chan int)))
	if !errors.Is(err, natsbridge.ErrEncode) {
		t.Errorf("unencodable payload: got %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	const ts = `"2026-01-02T03:04:05Z"`
	valid := `{"id":"a","timestamp":` + ts + `,"type":"chat.say","payload":{"text":"hi"}}`
	if _, err := natsbridge.Decode[sayPayload]([]byte(valid), natsbridge.DecodeOptions{}); err != nil {
		t.Fatalf("valid input rejected: %v", err)
	}
	cases := []struct {
		name   string
		input  string
		opts   natsbridge.DecodeOptions
		reason natsbridge.DecodeReason
		field  string
	}{
		{"oversize", valid, natsbridge.DecodeOptions{MaxBytes: len(valid) - 1}, natsbridge.ReasonOversize, ""},
		{"oversize default", `{"id":"` + strings.Repeat("x", (64<<10)) + `"}`, natsbridge.DecodeOptions{}, natsbridge.ReasonOversize, ""},
		{"empty", ``, natsbridge.DecodeOptions{}, natsbridge.ReasonMalformed, ""},
		{"syntax", `{"id":`, natsbridge.DecodeOptions{}, natsbridge.ReasonMalformed, ""},
		{"not an object", `[1,2]`, natsbridge.DecodeOptions{}, natsbridge.ReasonMalformed, ""},
		{"trailing object", valid + `{}`, natsbridge.DecodeOptions{}, natsbridge.ReasonMalformed, ""},
		{"trailing garbage", valid + ` x`, natsbridge.DecodeOptions{}, natsbridge.ReasonMalformed, ""},
		{"wrong type", `{"id":"a","timestamp":` + ts + `,"type":"t","payload":{"text":5}}`, natsbridge.DecodeOptions{}, natsbridge.ReasonMalformed, "payload.text"},
		{"bad timestamp", `{"id":"a","timestamp":"yesterday","type":"t","payload":{}}`, natsbridge.DecodeOptions{}, natsbridge.ReasonMalformed, ""},
		{"unknown top-level field", `{"id":"a","timestamp":` + ts + `,"type":"t","admin":true,"payload":{"text":"hi"}}`, natsbridge.DecodeOptions{}, natsbridge.ReasonUnknownField, "admin"},
		{"unknown payload field", `{"id":"a","timestamp":` + ts + `,"type":"t","payload":{"text":"hi","x":1}}`, natsbridge.DecodeOptions{}, natsbridge.ReasonUnknownField, "x"},
		{"missing id", `{"timestamp":` + ts + `,"type":"t","payload":{}}`, natsbridge.DecodeOptions{}, natsbridge.ReasonMissingField, "id"},
		{"empty id", `{"id":"","timestamp":` + ts + `,"type":"t","payload":{}}`, natsbridge.DecodeOptions{}, natsbridge.ReasonMissingField, "id"},
		{"missing timestamp", `{"id":"a","type":"t","payload":{}}`, natsbridge.DecodeOptions{}, natsbridge.ReasonMissingField, "timestamp"},
		{"missing type", `{"id":"a","timestamp":` + ts + `,"payload":{}}`, natsbridge.DecodeOptions{}, natsbridge.ReasonMissingField, "type"},
		{"missing payload", `{"id":"a","timestamp":` + ts + `,"type":"t"}`, natsbridge.DecodeOptions{}, natsbridge.ReasonMissingField, "payload"},
		{"null payload", `{"id":"a","timestamp":` + ts + `,"type":"t","payload":null}`, natsbridge.DecodeOptions{}, natsbridge.ReasonMissingField, "payload"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := natsbridge.Decode[sayPayload]([]byte(tc.input), tc.opts)
			var de *natsbridge.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want *DecodeError", err, err)
			}
			if !errors.Is(err, natsbridge.ErrDecode) {
				t.Errorf("errors.Is(%v, ErrDecode) = false", err)
			}
			if de.Reason != tc.reason || de.Field != tc.field {
				t.Errorf("got reason %q field %q, want %q %q (%v)", de.Reason, de.Field, tc.reason, tc.field, err)
			}
		})
	}
}

// TestDecodeOversizeBeforeParsing shows the size check comes first: oversize garbage
// is reported as oversize, not as malformed.
func TestDecodeOversizeBeforeParsing(t *testing.T) {
	t.Parallel()
	_, err := natsbridge.Decode[json.RawMessage]([]byte(strings.Repeat("{", 100)), natsbridge.DecodeOptions{MaxBytes: 99})
	var de *natsbridge.DecodeError
	if !errors.As(err, &de) || de.Reason != natsbridge.ReasonOversize {
		t.Fatalf("got %v, want ReasonOversize", err)
	}
}

func TestDecodeRawPayload(t *testing.T) {
	t.Parallel()
	in := `{"id":"a","timestamp":"2026-01-02T03:04:05Z","type":"t","payload":{"anything":[1,2]}}`
	env, err := natsbridge.Decode[json.RawMessage]([]byte(in), natsbridge.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(env.Payload) != `{"anything":[1,2]}` {
		t.Fatalf("payload %s", env.Payload)
	}
}

func TestPublishAndReceive(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testnats.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subject, err := natsbridge.ChatSay("room-7")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	before := time.Now()
	plain := natsbridge.NewEnvelope("chat.say", sayPayload{Text: "plain"})
	if err := natsbridge.Publish(ctx, nc, subject, plain); err != nil {
		t.Fatal(err)
	}
	deduped := natsbridge.NewEnvelope("chat.say", sayPayload{Text: "dedup"})
	if err := natsbridge.PublishWithMsgID(ctx, nc, subject, deduped); err != nil {
		t.Fatal(err)
	}
	for _, want := range []natsbridge.Envelope[sayPayload]{plain, deduped} {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got, err := natsbridge.Decode[sayPayload](msg.Data, natsbridge.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != want.ID || got.Payload != want.Payload {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		wantHeader := ""
		if want.ID == deduped.ID {
			wantHeader = deduped.ID
		}
		if h := msg.Header.Get(natsbridge.HeaderMsgID); h != wantHeader {
			t.Errorf("Nats-Msg-Id %q, want %q", h, wantHeader)
		}
		// Both helpers stamp the publish time for the Bridge's latency stats.
		ns, err := strconv.ParseInt(msg.Header.Get(natsbridge.HeaderPublishedAt), 10, 64)
		if at := time.Unix(0, ns); err != nil || at.Before(before.Truncate(time.Microsecond)) || at.After(time.Now()) {
			t.Errorf("%s = %q (%v), want a time between the publish and now",
				natsbridge.HeaderPublishedAt, msg.Header.Get(natsbridge.HeaderPublishedAt), err)
		}
	}

	if err := natsbridge.Publish(ctx, nc, "chat.say.room.*", plain); !errors.Is(err, natsbridge.ErrInvalidSubject) {
		t.Errorf("publish on a wildcard: got %v, want ErrInvalidSubject", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := natsbridge.Publish(done, nc, subject, plain); !errors.Is(err, context.Canceled) {
		t.Errorf("publish with a done ctx: got %v", err)
	}
}

// FuzzDecode checks that Decode never panics, that every error is a *DecodeError
// matching ErrDecode, and that whatever it accepts re-encodes and decodes to the same
// envelope.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"a","timestamp":"2026-01-02T03:04:05Z","type":"t","payload":{"text":"hi"}}`))
	f.Add([]byte(`{"id":"a","timestamp":"2026-01-02T03:04:05Z","type":"t","payload":{"text":"hi","x":1}}`))
	f.Add([]byte(`{"id":"a"} {}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := natsbridge.Decode[sayPayload](data, natsbridge.DecodeOptions{MaxBytes: 512})
		if err != nil {
			var de *natsbridge.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, natsbridge.ErrDecode) {
				t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
			}
			return
		}
		if env.ID == "" || env.Type == "" || env.Timestamp.IsZero() {
			t.Fatalf("accepted an incomplete envelope %+v", env)
		}
		again, err := natsbridge.Encode(env)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		back, err := natsbridge.Decode[sayPayload](again, natsbridge.DecodeOptions{MaxBytes: 4096})
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v", again, err)
		}
		if back.ID != env.ID || back.Type != env.Type || !back.Timestamp.Equal(env.Timestamp) || back.Payload != env.Payload {
			t.Fatalf("re-encode changed the envelope: %+v vs %+v", back, env)
		}
	})
}

func ExampleDecode() {
	type say struct {
		Text string `json:"text"`
	}
	good := []byte(`{"id":"m1","timestamp":"2026-01-02T03:04:05Z","type":"chat.say","sender":"p1","payload":{"text":"hello"}}`)
	env, err := natsbridge.Decode[say](good, natsbridge.DecodeOptions{})
	fmt.Println(env.Type, env.Sender, env.Payload.Text, err)

	bad := []byte(`{"id":"m2","timestamp":"2026-01-02T03:04:05Z","type":"chat.say","payload":{"text":"hi","admin":true}}`)
	_, err = natsbridge.Decode[say](bad, natsbridge.DecodeOptions{})
	var de *natsbridge.DecodeError
	if errors.As(err, &de) {
		fmt.Println(de.Reason, de.Field, errors.Is(err, natsbridge.ErrDecode))
	}
	// Output:
	// chat.say p1 hello <nil>
	// unknown_field admin true
}
