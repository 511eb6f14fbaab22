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

// Rules holds every number of the passive lucidity flux (see FLUX.md). DefaultRules returns
// the documented defaults; a game changes any field, then NewEvaluator validates them.
//
// The maps are read, never written, by this package; an Evaluator takes its own copy.
type Rules struct {
	// Tiers gives the lowest lucidity of each tier (70, 40, 20, 1).
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

	// MinLucidity and MaxLucidity bound lucidity (−100 and 100).
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

// Validate reports the first problem with r as an error wrapping ErrInvalidRules, or nil.
// It walks every map, so it costs O(number of overrides).
func (r Rules) Validate() error {
	if r.MinLucidity >= r.MaxLucidity {
		return invalidRules("MinLucidity %d must be below MaxLucidity %d", r.MinLucidity, r.MaxLucidity)
	}
	t := r.Tiers
	if t.LucidMin <= t.UneasyMin || t.UneasyMin <= t.FracturedMin || t.FracturedMin <= t.DerangedMin {
		return invalidRules("tier thresholds %d, %d, %d, %d must be strictly decreasing",
			t.LucidMin, t.UneasyMin, t.FracturedMin, t.DerangedMin)
	}
	if r.ActiveWindow < 0 || r.NewCharacterWindow < 0 {
		return invalidRules("ActiveWindow %v and NewCharacterWindow %v must not be negative",
			r.ActiveWindow, r.NewCharacterWindow)
	}
	if r.DayStartHour < 0 || r.DayStartHour > 23 || r.DayEndHour < 0 || r.DayEndHour > 23 {
		return invalidRules("DayStartHour %d and DayEndHour %d must be within 0..23", r.DayStartHour, r.DayEndHour)
	}
	for name, m := range map[string]map[string]Profile{
		"RoomOverrides": r.RoomOverrides, "SubZoneOverrides": r.SubZoneOverrides,
		"ZoneOverrides": r.ZoneOverrides, "Environments": r.Environments,
	} {
		for k, p := range m {
			if !p.finite() {
				return invalidRules("%s[%q] has a value that is NaN or infinite", name, k)
			}
		}
	}
	if !r.DefaultProfile.finite() {
		return invalidRules("DefaultProfile has a value that is NaN or infinite")
	}
	if !finiteNonNegative(r.WorldRateCap) {
		return invalidRules("WorldRateCap %v must be finite and not negative", r.WorldRateCap)
	}
	for k, rate := range r.WorldOverrides {
		if err := validateWorldKey(k); err != nil {
			return invalidRules("WorldOverrides key %q: %v", k, err)
		}
		if !finiteNonNegative(rate) {
			return invalidRules("WorldOverrides[%q] rate %v must be finite and not negative", k, rate)
		}
	}
	if !finiteNonNegative(r.CompanionBonus) || !finiteNonNegative(r.CompanionBonusCap) || !finite(r.ImpairedCompanionFlux) {
		return invalidRules("CompanionBonus %v and CompanionBonusCap %v must be finite and not negative, ImpairedCompanionFlux %v finite",
			r.CompanionBonus, r.CompanionBonusCap, r.ImpairedCompanionFlux)
	}
	if r.AdaptationStep < 1 || r.AdaptationMaxSteps < 0 {
		return invalidRules("AdaptationStep %d must be at least 1 and AdaptationMaxSteps %d not negative",
			r.AdaptationStep, r.AdaptationMaxSteps)
	}
	if !finiteNonNegative(r.AdaptationPerStep) || !finiteNonNegative(r.AdaptationFloor) || r.AdaptationFloor > 1 {
		return invalidRules("AdaptationPerStep %v must be finite and not negative, AdaptationFloor %v within [0, 1]",
			r.AdaptationPerStep, r.AdaptationFloor)
	}
	if !finiteNonNegative(r.CarryEpsilon) || r.CarryEpsilon >= 0.5 {
		return invalidRules("CarryEpsilon %v must be within [0, 0.5)", r.CarryEpsilon)
	}
	return nil
}

func invalidRules(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRules, fmt.Sprintf(format, args...))
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
// shrinks flux. It walks every map.
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

func (p Profile) finite() bool {
	return finite(p.Day.LCD) && finite(p.Night.LCD) && finite(p.All.LCD)
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
