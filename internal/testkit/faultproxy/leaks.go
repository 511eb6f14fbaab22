package faultproxy

import "go.uber.org/goleak"

// KnownLeaks returns the goleak options that ignore a goroutine toxiproxy v2.5.0 itself can
// leave behind: when a toxic is added to or removed from a connection while data is
// flowing, the connection's first stub (a NoopToxic) can stay blocked forever on a send
// to a channel nobody reads any more (toxics/noop.go sends without selecting on its
// interrupt). It belongs to the fault-injection tool, not to the code under test, so the
// packages whose tests use this proxy pass these options to goleak.VerifyTestMain; every
// other goroutine is still checked.
func KnownLeaks() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
	}
}
