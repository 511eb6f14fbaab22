package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/internal/configerr"
)

// ReplayConfig configures Replay.
type ReplayConfig struct {
	// Stream is the dead-letter stream's name (required).
	Stream string
	// Filter restricts the replay to dead letters whose dead-letter subject matches it,
	// e.g. "deadletter.chat.>"; empty replays every kept dead letter.
	Filter string
	// Delete removes each replayed dead letter from the stream once its re-publication
	// is acknowledged or confirmed (see Replay); one that is not stays in the stream.
	Delete bool
}

// ReplayResult reports what Replay did.
type ReplayResult struct {
	// Replayed counts dead letters whose re-publication was acknowledged by a stream
	// or confirmed delivered to a subscriber (see Replay).
	Replayed int
	// Undelivered counts dead letters re-published but neither acknowledged nor
	// confirmed: no stream and no subscriber had the subject, or the stream took the
	// message for a duplicate of one it holds (its Nats-Msg-Id is still in the stream's
	// duplicate window). They are never deleted.
	Undelivered int
	// Deleted counts dead letters removed from the stream (with Delete).
	Deleted int
	// Skipped counts stream messages without HeaderDeadLetterSubject (not dead letters).
	Skipped int
}

// Replay re-publishes the dead letters present in cfg.Stream to their original subjects,
// in stream order, with their original payload and headers (HeaderReplayOf added); with
// Delete it deletes each one only after its re-publication was acknowledged by a stream
// or confirmed delivered (see "Dead letters" in the package doc). It costs one round trip
// per dead letter and returns what it did so far with the first error.
func Replay(ctx context.Context, js jetstream.JetStream, cfg ReplayConfig) (ReplayResult, error) {
	var res ReplayResult
	if js == nil {
		return res, fmt.Errorf("%w: nil jetstream.JetStream", ErrInvalidConfig)
	}
	if err := checkJetStreamName("ReplayConfig.Stream", cfg.Stream); err != nil {
		return res, err
	}
	if cfg.Filter != "" {
		if err := ValidatePattern(cfg.Filter); err != nil {
			return res, configerr.Wrap[invalidConfig]("ReplayConfig.Filter", cfg.Filter, "", err)
		}
	}
	stream, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return res, fmt.Errorf("natsbridge: replay: stream %q: %w", cfg.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("natsbridge: replay: stream %q info: %w", cfg.Stream, err)
	}
	rp, err := newReplayer(ctx, js)
	if err != nil {
		return res, err
	}
	defer rp.close()
	last := info.State.LastSeq
	for seq := info.State.FirstSeq; seq != 0 && seq <= last; {
		var opts []jetstream.GetMsgOpt
		if cfg.Filter != "" {
			opts = append(opts, jetstream.WithGetMsgSubject(cfg.Filter))
		}
		raw, err := stream.GetMsg(ctx, seq, opts...)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if cfg.Filter != "" {
				break // nothing matches at or after seq
			}
			seq++ // deleted message
			continue
		}
		if err != nil {
			return res, fmt.Errorf("natsbridge: replay: get %s:%d: %w", cfg.Stream, seq, err)
		}
		if raw.Sequence > last {
			break
		}
		seq = raw.Sequence + 1
		original := raw.Header.Get(HeaderDeadLetterSubject)
		if original == "" || ValidateSubject(original) != nil {
			res.Skipped++
			continue
		}
		h := make(nats.Header, len(raw.Header))
		for k, v := range raw.Header {
			if orig, ok := strings.CutPrefix(k, headerDeadLetterNATSPrefix); ok && isNATSHeader(orig) {
				h[orig] = v // a header the dead letter had to move aside
			} else if !strings.HasPrefix(k, "Gp-Dl-") && k != jetstream.MsgIDHeader {
				h[k] = v // (the dead letter's own Nats-Msg-Id is not the original's)
			}
		}
		h.Set(HeaderReplayOf, cfg.Stream+":"+strconv.FormatUint(raw.Sequence, 10))
		msg := &nats.Msg{Subject: original, Data: raw.Data, Header: h}
		if _, ok := h[HeaderPublishedAt]; ok {
			// A replay is a new delivery: the time spent as a dead letter is not the
			// handler's latency.
			SetPublishedAt(msg, time.Now())
		}
		delivered, err := rp.publish(ctx, msg)
		if err != nil {
			return res, fmt.Errorf("natsbridge: replay: publish to %q: %w", original, err)
		}
		if !delivered {
			res.Undelivered++
			continue
		}
		res.Replayed++
		if cfg.Delete {
			if err := stream.DeleteMsg(ctx, raw.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				return res, fmt.Errorf("natsbridge: replay: delete %s:%d: %w", cfg.Stream, raw.Sequence, err)
			}
			res.Deleted++
		}
	}
	return res, nil
}

// replayer re-publishes messages and tells whether each was acknowledged by a stream
// or confirmed delivered to a core subscriber.
type replayer struct {
	js       jetstream.JetStream
	nc       *nats.Conn
	captured map[string]bool // subject → a stream captures it
	inbox    string
	sub      *nats.Subscription // inbox.*: "no responders" answers
	n        uint64
}

func newReplayer(_ context.Context, js jetstream.JetStream) (*replayer, error) {
	nc := js.Conn()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("natsbridge: replay: subscribe to the confirmation inbox: %w", err)
	}
	return &replayer{js: js, nc: nc, captured: map[string]bool{}, inbox: inbox, sub: sub}, nil
}

func (rp *replayer) close() { _ = rp.sub.Unsubscribe() }

// publish re-publishes msg; delivered reports an acknowledgement (stream) or a
// confirmation (core, see Replay).
func (rp *replayer) publish(ctx context.Context, msg *nats.Msg) (delivered bool, err error) {
	captured, ok := rp.captured[msg.Subject]
	if !ok {
		_, err := rp.js.StreamNameBySubject(ctx, msg.Subject)
		switch {
		case err == nil:
			captured = true
		case errors.Is(err, jetstream.ErrStreamNotFound):
			captured = false
		default:
			return false, fmt.Errorf("look up the stream of %q: %w", msg.Subject, err)
		}
		rp.captured[msg.Subject] = captured
	}
	if captured {
		ack, err := rp.js.PublishMsg(ctx, msg)
		if err != nil {
			return false, err
		}
		return !ack.Duplicate, nil
	}
	rp.n++
	msg.Reply = rp.inbox + "." + strconv.FormatUint(rp.n, 10)
	if err := rp.nc.PublishMsg(msg); err != nil {
		return false, err
	}
	// The server answers "no responders" while it processes the publish, before the
	// flush's PONG, so after the flush the answer, if any, is already buffered.
	if err := rp.nc.FlushWithContext(ctx); err != nil {
		return false, err
	}
	delivered = true
	for {
		m, err := rp.sub.NextMsg(0)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			// Only this message's answer can be here: earlier ones were consumed.
			delivered = false
			continue
		case err != nil:
			return delivered, nil // nothing more buffered
		case m != nil:
			continue // a subscriber answered the replay inbox: ignored
		}
	}
}
