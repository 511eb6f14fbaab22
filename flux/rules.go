package flux

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ErrInvalidRules is wrapped by every error of Rules.Validate (and so of NewEvaluator).
var ErrInvalidRules = errors.New("flux: invalid rules")

// MaxRate is the largest magnitude Rules.Validate accepts for every rate, in lucidity per
// evaluation: each profile value (Day, Night and All of every override, environment and
// DefaultProfile), each world-override rate, WorldRateCap, CompanionBonus,
// CompanionBonusCap and ImpairedCompanionFlux.
//
// With every rate within it, Rules.MaxFlux is at most 3·MaxRate, so no evaluation's flux or
// residual can overflow to ±Inf or NaN (a finite rate of 1e308 did), and a residual that
// large still keeps its fraction to about 1e-9, far finer than CarryEpsilon's default 1e-6.
// The default rates are at most 1.5; a rate of MaxRate crosses even the widest lucidity
// range allowed (2·MaxLucidityBound) in about a thousand evaluations.
const MaxRate = 1e6

// MaxLucidityBound is the largest magnitude Rules.Validate accepts for MinLucidity and
// MaxLucidity: 2^29 (536,870,912). Lucidity is stored in an integer (int4) column and
// changes travel as int32 deltas. With both bounds within ±2^29, the span MaxLucidity −
// MinLucidity is at most 2^30, so any delta between two lucidities in range fits an int32,
// and a lucidity in range plus such a delta is at most 3·2^29 < 2^31−1 in magnitude: no
// step overflows, neither in Go (even where int has 32 bits) nor in the apply statement's
// integer arithmetic on a row the game changed meanwhile.
const MaxLucidityBound = 1 << 29

// RulesError is the error of a rule value Rules.Validate refuses: Field names the field
// (for example "MaxLucidity", "Tiers.LucidMin" or `Environments["eldritch"].Night`) and
// Reason says what is wrong with its value and which limit it breaks. It wraps
// ErrInvalidRules, so errors.Is(err, ErrInvalidRules) holds; use errors.As to read the
// field.
type RulesError struct {
	Field  string
	Reason string
}

// Error returns "flux: invalid rules: <Field>: <Reason>".
func (e *RulesError) Error() string {
	return ErrInvalidRules.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalidRules.
func (e *RulesError) Unwrap() error { return ErrInvalidRules }

// Rules holds every number of the passive lucidity flux (see FLUX.md). DefaultRules returns
// the documented defaults; a game changes any field, then NewEvaluator validates them.
//
// The maps are read, never written, by this package; an Evaluator takes its own copy.
type Rules struct {
	// Tiers gives the lowest lucidity of each tier (70, 40, 20, 1). Validate requires
	// them strictly decreasing and within [MinLucidity, MaxLucidity+1]. A threshold beyond
	// that range is most likely a typo (LucidMin 700 for 70): it can only make a tier
	// unreachable, which the ends themselves already do (LucidMin = MaxLucidity+1: nobody
	// is lucid; DerangedMin = MinLucidity: nobody is catatonic).
	Tiers TierThresholds

	// ActiveWindow: a player whose LastActive is at most this long before now is active
	// (5 minutes).
	ActiveWindow time.Duration
	// NewCharacterWindow: a player whose CreatedAt is at most this long before now is
	// active (1 hour).
	NewCharacterWindow time.Duration

	// DayStartHour and DayEndHour bound the day period, inclusive (6 and 17).
	DayStartHour int
	DayEndHour   int

	// RoomOverrides, SubZoneOverrides and ZoneOverrides give a profile by room id,
	// sub-zone and zone; they take precedence, in that order, over Environments.
	RoomOverrides    map[string]Profile
	SubZoneOverrides map[string]Profile // "sanitarium": −0.5 at all times
	ZoneOverrides    map[string]Profile
	// Environments gives the profile of each environment kind; DefaultProfile is used for
	// an environment not listed (0 day and night).
	Environments   map[string]Profile
	DefaultProfile Profile

	// WorldOverrides gives a drain rate keyed "plane|zone|sub_zone", "plane|zone|*" or
	// "plane|*|*" (lower case; the room's fields are lower-cased to match). The first key
	// found, most specific first, replaces the base flux with −min(rate, WorldRateCap).
	WorldOverrides map[string]float64
	// WorldRateCap caps a world override's rate (10).
	WorldRateCap float64

	// CompanionBonus is added per lucid or uneasy companion (0.1), up to
	// CompanionBonusCap in all (0.3).
	CompanionBonus    float64
	CompanionBonusCap float64
	// ImpairedCompanionFlux is added once when any companion is deranged or catatonic
	// (−0.2).
	ImpairedCompanionFlux float64

	// A negative base+companion flux is multiplied by
	// max(AdaptationFloor, 1 − AdaptationPerStep·s), s = min(AdaptationMaxSteps,
	// (n−1) div AdaptationStep), n counting consecutive evaluations in the room
	// (10, 0.25, 0.5, 2).
	AdaptationStep     int
	AdaptationPerStep  float64
	AdaptationFloor    float64
	AdaptationMaxSteps int

	// CarryEpsilon is the tolerance of the fractional carry (1e-6): a residual within
	// CarryEpsilon of a whole point applies that point.
	CarryEpsilon float64

	// MinLucidity and MaxLucidity bound lucidity (−100 and 100). Validate requires
	// MinLucidity < MaxLucidity, both within ±MaxLucidityBound.
	MinLucidity int
	MaxLucidity int
}

// DefaultRules returns the rules of FLUX.md, with freshly allocated maps the caller may
// change.
func DefaultRules() Rules {
	sanctuary := DayNight(0.6, 0.3)
	haunted := DayNight(-0.4, -0.8)
	return Rules{
		Tiers:              TierThresholds{LucidMin: 70, UneasyMin: 40, FracturedMin: 20, DerangedMin: 1},
		ActiveWindow:       5 * time.Minute,
		NewCharacterWindow: time.Hour,
		DayStartHour:       6,
		DayEndHour:         17,
		RoomOverrides:      map[string]Profile{},
		SubZoneOverrides:   map[string]Profile{"sanitarium": Always(-0.5)},
		ZoneOverrides:      map[string]Profile{},
		Environments: map[string]Profile{
			"sanctuary":     sanctuary,
			"sun_sanctuary": sanctuary,
			"temple":        sanctuary,
			"safehouse":     sanctuary,
			"street_paved":  DayNight(0.2, 0),
			"camp":          DayNight(0.2, 0.2),
			"graveyard":     haunted,
			"haunted":       haunted,
			"eldritch":      DayNight(-1.2, -1.5),
			"storm":         DayNight(-0.3, -0.3),
			"forsaken":      DayNight(-0.5, -0.2),
			"indoors":       DayNight(0, 0),
			"outdoors":      DayNight(0, 0),
		},
		DefaultProfile:        DayNight(0, 0),
		WorldOverrides:        map[string]float64{},
		WorldRateCap:          10,
		CompanionBonus:        0.1,
		CompanionBonusCap:     0.3,
		ImpairedCompanionFlux: -0.2,
		AdaptationStep:        10,
		AdaptationPerStep:     0.25,
		AdaptationFloor:       0.5,
		AdaptationMaxSteps:    2,
		CarryEpsilon:          1e-6,
		MinLucidity:           -100,
		MaxLucidity:           100,
	}
}

// Validate reports the first problem with r as a *RulesError (wrapping ErrInvalidRules)
// naming the field and the limit it breaks, or nil. Beyond consistency (tier order, hours,
// adaptation, epsilon), it bounds every number an evaluation computes with: each rate
// within ±MaxRate and finite, the lucidity bounds within ±MaxLucidityBound, and the tier
// thresholds within [MinLucidity, MaxLucidity+1]. So under rules it accepts, MaxFlux is
// finite and no evaluation produces a NaN or infinite flux or residual, or overflows
// lucidity. It walks every map, so it costs O(number of overrides).
func (r Rules) Validate() error {
	for _, b := range [...]struct {
		field string
		v     int
	}{{"MinLucidity", r.MinLucidity}, {"MaxLucidity", r.MaxLucidity}} {
		if b.v < -MaxLucidityBound || b.v > MaxLucidityBound {
			return rulesError(b.field, "%d is beyond ±MaxLucidityBound (%d)", b.v, MaxLucidityBound)
		}
	}
	if r.MinLucidity >= r.MaxLucidity {
		return rulesError("MinLucidity", "%d must be below MaxLucidity %d", r.MinLucidity, r.MaxLucidity)
	}
	if err := r.validateTiers(); err != nil {
		return err
	}
	if r.ActiveWindow < 0 {
		return rulesError("ActiveWindow", "%v must not be negative", r.ActiveWindow)
	}
	if r.NewCharacterWindow < 0 {
		return rulesError("NewCharacterWindow", "%v must not be negative", r.NewCharacterWindow)
	}
	if r.DayStartHour < 0 || r.DayStartHour > 23 {
		return rulesError("DayStartHour", "%d must be within 0..23", r.DayStartHour)
	}
	if r.DayEndHour < 0 || r.DayEndHour > 23 {
		return rulesError("DayEndHour", "%d must be within 0..23", r.DayEndHour)
	}
	for _, m := range [...]struct {
		name     string
		profiles map[string]Profile
	}{
		{"RoomOverrides", r.RoomOverrides}, {"SubZoneOverrides", r.SubZoneOverrides},
		{"ZoneOverrides", r.ZoneOverrides}, {"Environments", r.Environments},
	} {
		for k, p := range m.profiles {
			if err := validateProfile(fmt.Sprintf("%s[%q]", m.name, k), p); err != nil {
				return err
			}
		}
	}
	if err := validateProfile("DefaultProfile", r.DefaultProfile); err != nil {
		return err
	}
	if why := rateProblem(r.WorldRateCap, true); why != "" {
		return rulesError("WorldRateCap", "%s", why)
	}
	for k, rate := range r.WorldOverrides {
		if err := validateWorldKey(k); err != nil {
			return rulesError(fmt.Sprintf("WorldOverrides[%q]", k), "key: %v", err)
		}
		if why := rateProblem(rate, true); why != "" {
			return rulesError(fmt.Sprintf("WorldOverrides[%q]", k), "rate %s", why)
		}
	}
	for _, c := range [...]struct {
		field       string
		v           float64
		nonNegative bool
	}{
		{"CompanionBonus", r.CompanionBonus, true},
		{"CompanionBonusCap", r.CompanionBonusCap, true},
		{"ImpairedCompanionFlux", r.ImpairedCompanionFlux, false},
	} {
		if why := rateProblem(c.v, c.nonNegative); why != "" {
			return rulesError(c.field, "%s", why)
		}
	}
	if r.AdaptationStep < 1 {
		return rulesError("AdaptationStep", "%d must be at least 1", r.AdaptationStep)
	}
	if r.AdaptationMaxSteps < 0 {
		return rulesError("AdaptationMaxSteps", "%d must not be negative", r.AdaptationMaxSteps)
	}
	if !finiteNonNegative(r.AdaptationPerStep) {
		return rulesError("AdaptationPerStep", "%v must be finite and not negative", r.AdaptationPerStep)
	}
	if !finiteNonNegative(r.AdaptationFloor) || r.AdaptationFloor > 1 {
		return rulesError("AdaptationFloor", "%v must be within [0, 1]", r.AdaptationFloor)
	}
	if !finiteNonNegative(r.CarryEpsilon) || r.CarryEpsilon >= 0.5 {
		return rulesError("CarryEpsilon", "%v must be within [0, 0.5)", r.CarryEpsilon)
	}
	return nil
}

// validateTiers checks that the thresholds decrease strictly and lie within
// [MinLucidity, MaxLucidity+1]; the lucidity bounds are already checked.
func (r Rules) validateTiers() error {
	t := r.Tiers
	steps := [...]struct {
		field, above string
		v, limit     int
	}{
		{"Tiers.UneasyMin", "Tiers.LucidMin", t.UneasyMin, t.LucidMin},
		{"Tiers.FracturedMin", "Tiers.UneasyMin", t.FracturedMin, t.UneasyMin},
		{"Tiers.DerangedMin", "Tiers.FracturedMin", t.DerangedMin, t.FracturedMin},
	}
	for _, s := range steps {
		if s.v >= s.limit {
			return rulesError(s.field, "%d must be below %s %d (thresholds decrease strictly)", s.v, s.above, s.limit)
		}
	}
	if t.LucidMin > r.MaxLucidity+1 {
		return rulesError("Tiers.LucidMin", "%d is above MaxLucidity+1 (%d): no lucidity reaches it",
			t.LucidMin, r.MaxLucidity+1)
	}
	if t.DerangedMin < r.MinLucidity {
		return rulesError("Tiers.DerangedMin", "%d is below MinLucidity (%d): no lucidity falls under it",
			t.DerangedMin, r.MinLucidity)
	}
	return nil
}

// validateProfile checks each of p's values (set or not) with rateProblem; field names p.
func validateProfile(field string, p Profile) error {
	for _, v := range [...]struct {
		name string
		rate Rate
	}{{"Day", p.Day}, {"Night", p.Night}, {"All", p.All}} {
		if why := rateProblem(v.rate.LCD, false); why != "" {
			return rulesError(field+"."+v.name, "%s", why)
		}
	}
	return nil
}

// rateProblem returns what is wrong with a rate (not finite, negative when nonNegative,
// beyond ±MaxRate), or "".
func rateProblem(v float64, nonNegative bool) string {
	switch {
	case !finite(v):
		return fmt.Sprintf("%v must be finite", v)
	case nonNegative && v < 0:
		return fmt.Sprintf("%v must not be negative", v)
	case math.Abs(v) > MaxRate:
		return fmt.Sprintf("%v is beyond ±MaxRate (%g)", v, MaxRate)
	}
	return ""
}

func rulesError(field, format string, args ...any) error {
	return &RulesError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// validateWorldKey checks a "plane|zone|sub_zone" key: three lower-case parts, a "*" zone
// only with a "*" sub-zone, and a plane that is not "*".
func validateWorldKey(k string) error {
	parts := strings.Split(k, "|")
	if len(parts) != 3 {
		return errors.New(`want "plane|zone|sub_zone", "plane|zone|*" or "plane|*|*"`)
	}
	if k != strings.ToLower(k) {
		return errors.New("must be lower case")
	}
	if parts[0] == "*" || (parts[1] == "*" && parts[2] != "*") {
		return errors.New(`wildcards allowed only as "plane|zone|*" or "plane|*|*"`)
	}
	return nil
}

// MaxFlux returns an upper bound of |flux| of one evaluation under r: the largest profile
// or (capped) world-override value plus the largest companion flux. Adaptation only
// shrinks flux. Under rules Validate accepts it is finite, at most 3·MaxRate. It walks
// every map.
func (r Rules) MaxFlux() float64 {
	base := r.DefaultProfile.maxAbs()
	for _, m := range []map[string]Profile{r.RoomOverrides, r.SubZoneOverrides, r.ZoneOverrides, r.Environments} {
		for _, p := range m {
			base = math.Max(base, p.maxAbs())
		}
	}
	for _, rate := range r.WorldOverrides {
		base = math.Max(base, math.Min(rate, r.WorldRateCap))
	}
	return base + r.CompanionBonusCap + math.Abs(r.ImpairedCompanionFlux)
}

// clone returns r with its own copies of the maps.
func (r Rules) clone() Rules {
	r.RoomOverrides = cloneMap(r.RoomOverrides)
	r.SubZoneOverrides = cloneMap(r.SubZoneOverrides)
	r.ZoneOverrides = cloneMap(r.ZoneOverrides)
	r.Environments = cloneMap(r.Environments)
	r.WorldOverrides = cloneMap(r.WorldOverrides)
	return r
}

func cloneMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (p Profile) maxAbs() float64 {
	m := 0.0
	for _, r := range [...]Rate{p.Day, p.Night, p.All} {
		if r.Set {
			m = math.Max(m, math.Abs(r.LCD))
		}
	}
	return m
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func finiteNonNegative(v float64) bool { return finite(v) && v >= 0 }
