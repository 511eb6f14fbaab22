package flux

import "time"

// Rate is an optional flux value in lucidity per evaluation: Set reports whether the value
// is given at all (an unset Rate falls through to the next choice, see Profile).
type Rate struct {
	LCD float64
	Set bool
}

// RateOf returns a set Rate of v.
func RateOf(v float64) Rate { return Rate{LCD: v, Set: true} }

// Profile is the base flux of a kind of place. For a period, Day or Night is used when
// set, else All, else 0.
type Profile struct {
	Day   Rate
	Night Rate
	All   Rate
}

// DayNight returns a profile with a day and a night value.
func DayNight(day, night float64) Profile {
	return Profile{Day: RateOf(day), Night: RateOf(night)}
}

// Always returns a profile with one value at all times.
func Always(v float64) Profile { return Profile{All: RateOf(v)} }

// Value returns the profile's flux for a period: the period's value, else All, else 0.
func (p Profile) Value(period Period) float64 {
	r := p.Night
	if period == Day {
		r = p.Day
	}
	switch {
	case r.Set:
		return r.LCD
	case p.All.Set:
		return p.All.LCD
	default:
		return 0
	}
}

// Period is the part of the day that selects a profile's value.
type Period uint8

// The two periods.
const (
	Day Period = iota
	Night
)

// String returns "day" or "night".
func (p Period) String() string {
	if p == Day {
		return "day"
	}
	return "night"
}

// Period returns the period of t: Day when t's hour (in t's location) is within
// [DayStartHour, DayEndHour] inclusive (wrapping past midnight when DayStartHour >
// DayEndHour), else Night.
func (r Rules) Period(t time.Time) Period {
	return r.periodOfHour(t.Hour())
}

func (r Rules) periodOfHour(h int) Period {
	var day bool
	if r.DayStartHour <= r.DayEndHour {
		day = h >= r.DayStartHour && h <= r.DayEndHour
	} else {
		day = h >= r.DayStartHour || h <= r.DayEndHour
	}
	if day {
		return Day
	}
	return Night
}
