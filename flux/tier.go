package flux

// Tier names a band of lucidity. The names are the values stored in the database's tier
// column.
type Tier string

// The five tiers, from most to least lucid.
const (
	TierLucid     Tier = "lucid"
	TierUneasy    Tier = "uneasy"
	TierFractured Tier = "fractured"
	TierDeranged  Tier = "deranged"
	TierCatatonic Tier = "catatonic"
)

// Tiers returns the five tiers from most to least lucid, in a new slice.
func Tiers() []Tier {
	return []Tier{TierLucid, TierUneasy, TierFractured, TierDeranged, TierCatatonic}
}

// Valid reports whether t is one of the five tiers.
func (t Tier) Valid() bool {
	switch t {
	case TierLucid, TierUneasy, TierFractured, TierDeranged, TierCatatonic:
		return true
	}
	return false
}

// TierThresholds gives the lowest lucidity of each tier; anything below DerangedMin is
// catatonic. Valid thresholds are strictly decreasing from LucidMin to DerangedMin.
type TierThresholds struct {
	LucidMin     int // 70
	UneasyMin    int // 40
	FracturedMin int // 20
	DerangedMin  int // 1
}

// Tier returns the tier of a lucidity value under r. It costs a few comparisons.
func (r Rules) Tier(lucidity int) Tier {
	return r.Tiers.tier(lucidity)
}

func (t TierThresholds) tier(lucidity int) Tier {
	switch {
	case lucidity >= t.LucidMin:
		return TierLucid
	case lucidity >= t.UneasyMin:
		return TierUneasy
	case lucidity >= t.FracturedMin:
		return TierFractured
	case lucidity >= t.DerangedMin:
		return TierDeranged
	default:
		return TierCatatonic
	}
}

// companionKind is how a companion's tier counts: lucid and uneasy companions give the
// bonus, deranged and catatonic ones the penalty, fractured ones neither.
type companionKind uint8

const (
	companionNeutral companionKind = iota
	companionSteady
	companionImpaired
)

func companionKindOf(t Tier) companionKind {
	switch t {
	case TierLucid, TierUneasy:
		return companionSteady
	case TierDeranged, TierCatatonic:
		return companionImpaired
	}
	return companionNeutral
}
