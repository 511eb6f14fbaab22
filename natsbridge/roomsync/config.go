package roomsync

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/configerr"
	"github.com/gamepersist/gamepersist/natsbridge"
)

// Defaults applied by InvalidatorConfig.WithDefaults to zero-valued fields.
const (
	// defaultInvalidationSubject is the subject room-cache invalidation notices travel on.
	// Every process sharing one room database must use the same subject.
	defaultInvalidationSubject = "cache.rooms.invalidate"
	// defaultInvalidationQueueLen bounds the notices waiting for the publisher goroutine.
	// A notice is about 250 bytes on the wire; the queue holds at most this many, so a
	// burst of writes while the connection is saturated costs bounded memory.
	defaultInvalidationQueueLen = 4096
	// defaultMaxNoticeBytes is the largest notice the receiver decodes: a room id is at
	// most 255 bytes, so a valid notice is far below it.
	defaultMaxNoticeBytes = 4 << 10
	// defaultInvalidationPendingMsgs is the nats.go pending-message limit of the
	// invalidation subscription; beyond it nats.go drops notices (Stats.SlowConsumer)
	// and the cache TTL covers them.
	defaultInvalidationPendingMsgs = 65536
	// defaultInvalidationPendingBytes is the nats.go pending-bytes limit of the
	// invalidation subscription.
	defaultInvalidationPendingBytes = 16 << 20
	// defaultAttachConfirmTimeout bounds the round trip with which Attach confirms its
	// subscription when the caller's ctx has no deadline.
	defaultAttachConfirmTimeout = 10 * time.Second
)

// maxNoticeBytes and minNoticeBytes bound InvalidatorConfig.MaxNoticeBytes. The largest
// valid notice — a room id of roomstore.MaxIDLength bytes and an Instance of
// MaxInstanceLength bytes, both of characters JSON escapes to six bytes — is 3,248 bytes,
// so no limit in range drops a valid notice as malformed.
const (
	maxNoticeBytes = 1 << 20
	minNoticeBytes = 4 << 10
)

// roomInvalidationType is the natsbridge.Envelope.Type of a room-cache invalidation notice.
const roomInvalidationType = "roomstore.invalidate"

// InvalidatorConfig configures a RoomInvalidator. The zero value is valid: WithDefaults
// fills every zero field; NewRoomInvalidator rejects invalid values with an error
// wrapping ErrInvalidConfig.
type InvalidatorConfig struct {
	// Subject is the literal subject (no wildcards, see natsbridge.ValidateSubject) notices are
	// published and received on. Default "cache.rooms.invalidate".
	Subject string
	// Instance identifies this process. A notice whose origin is Instance is this
	// process's own echo and is ignored (its cache was invalidated by the write itself).
	// It must be unique among the processes sharing Subject; default a random NUID
	// (22 characters, ~1e35 values), which is unique without coordination. Valid UTF-8
	// without control characters, at most MaxInstanceLength bytes.
	Instance string
	// QueueLen bounds the notices waiting to be published (1..1,048,576). Publish never
	// waits: when the queue is full the notice is dropped and counted in Stats.Dropped.
	// Default 4,096.
	QueueLen int
	// MaxNoticeBytes is the largest notice decoded (4 KiB..1 MiB: every valid notice fits
	// 4 KiB); larger ones count as malformed. Default 4 KiB.
	MaxNoticeBytes int
	// SubPendingMsgs and SubPendingBytes are the nats.go pending limits of the
	// subscription Attach makes. The callback only decodes and invalidates (microseconds),
	// so they are rarely reached; notices nats.go drops beyond them appear in
	// Stats.SlowConsumer. Defaults 65,536 messages and 16 MiB; ranges 1..16,777,216 and 1 byte..16 GiB.
	SubPendingMsgs  int
	SubPendingBytes int
	// Logger receives structured events: malformed notices (warn), the first publish
	// failure of an outage (warn) and its end (info), further failures (debug). The zero
	// value logs nothing, as zerolog.Nop() does.
	Logger zerolog.Logger
}

// WithDefaults returns a copy of c with every zero-valued field set to its default. It
// allocates nothing but the copy (and a NUID for an empty Instance).
func (c InvalidatorConfig) WithDefaults() InvalidatorConfig {
	if c.Subject == "" {
		c.Subject = defaultInvalidationSubject
	}
	if c.Instance == "" {
		c.Instance = nuid.Next()
	}
	if c.QueueLen == 0 {
		c.QueueLen = defaultInvalidationQueueLen
	}
	if c.MaxNoticeBytes == 0 {
		c.MaxNoticeBytes = defaultMaxNoticeBytes
	}
	if c.SubPendingMsgs == 0 {
		c.SubPendingMsgs = defaultInvalidationPendingMsgs
	}
	if c.SubPendingBytes == 0 {
		c.SubPendingBytes = defaultInvalidationPendingBytes
	}
	return c
}

func (c InvalidatorConfig) validate() error {
	if err := natsbridge.ValidateSubject(c.Subject); err != nil {
		return configerr.Wrap[invalidConfig]("InvalidatorConfig.Subject", c.Subject, "", err)
	}
	if err := checkInstance(c.Instance); err != nil {
		return err
	}
	for _, err := range []error{
		intIn("InvalidatorConfig.QueueLen", c.QueueLen, 1, maxQueueLen),
		intIn("InvalidatorConfig.MaxNoticeBytes", c.MaxNoticeBytes, minNoticeBytes, maxNoticeBytes),
		intIn("InvalidatorConfig.SubPendingMsgs", c.SubPendingMsgs, 1, maxSubPendingMsgs),
		intIn("InvalidatorConfig.SubPendingBytes", c.SubPendingBytes, 1, maxSubPendingBytes),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// MaxInstanceLength is the longest InvalidatorConfig.Instance accepted, in bytes: with a
// room id of at most roomstore.MaxIDLength bytes, every notice stays within the default
// MaxNoticeBytes, so no receiver drops it as malformed.
const MaxInstanceLength = 255

// Bounds of the other InvalidatorConfig fields (a value past one is a *ConfigError).
const (
	maxQueueLen        = 1 << 20 // InvalidatorConfig.QueueLen
	maxSubPendingMsgs  = 1 << 24 // InvalidatorConfig.SubPendingMsgs
	maxSubPendingBytes = 1 << 34 // InvalidatorConfig.SubPendingBytes (16 GiB)
)

// checkInstance refuses an InvalidatorConfig.Instance that would make its notices
// malformed at the receivers or flood them: empty, invalid UTF-8, control characters, or
// more than MaxInstanceLength bytes.
func checkInstance(name string) error {
	why := ""
	switch {
	case name == "":
		why = "must not be empty"
	case !utf8.ValidString(name):
		why = "is not valid UTF-8"
	case len(name) > MaxInstanceLength:
		why = "is " + strconv.Itoa(len(name)) + " bytes, more than MaxInstanceLength (" + strconv.Itoa(MaxInstanceLength) + ")"
	case strings.ContainsFunc(name, unicode.IsControl):
		why = "contains a control character"
	}
	if why != "" {
		return configerr.New[invalidConfig]("InvalidatorConfig.Instance", name, why)
	}
	return nil
}
