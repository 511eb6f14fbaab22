//go:build race

package flux_test

// raceDetector reports whether the tests run under the race detector, which makes the
// longest ones several times slower; .ci/run also runs those without it, at full length.
const raceDetector = true
