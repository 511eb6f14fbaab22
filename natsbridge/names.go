package natsbridge

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxJetStreamNameLength is the longest stream or consumer name accepted, in bytes (the
// NATS server's own limit for JetStream names).
const maxJetStreamNameLength = 255

// maxQueueNameLength is the longest queue group name accepted, in bytes.
const maxQueueNameLength = 255

// nameProblem returns what is wrong with a name that travels to the NATS server as a
// token of its protocol — not valid UTF-8, a control character (NUL included), longer
// than maxLen bytes, or holding one of forbidden — or "". It costs one pass over name.
func nameProblem(name string, maxLen int, forbidden string) string {
	switch {
	case name == "":
		return "must not be empty"
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	case len(name) > maxLen:
		return "is " + strconv.Itoa(len(name)) + " bytes, more than the limit of " + strconv.Itoa(maxLen)
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }):
		return "contains a control or space character"
	case strings.ContainsAny(name, forbidden):
		return "contains one of " + forbidden
	}
	return ""
}

// checkJetStreamName refuses a stream or consumer name the server would refuse (or
// misread as a subject): empty, invalid UTF-8, control or space characters, '.', '*',
// '>', '/', '\', or more than maxJetStreamNameLength bytes.
func checkJetStreamName(field, name string) error {
	if why := nameProblem(name, maxJetStreamNameLength, `.*>/\`); why != "" {
		return configError(field, name, why)
	}
	return nil
}

// checkQueueName refuses a queue group name that is not one protocol token: invalid
// UTF-8, control or space characters, '*' or '>', more than maxQueueNameLength bytes. An
// empty name (no queue group) passes.
func checkQueueName(field, name string) error {
	if name == "" {
		return nil
	}
	if why := nameProblem(name, maxQueueNameLength, "*>"); why != "" {
		return configError(field, name, why)
	}
	return nil
}
