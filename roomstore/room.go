package roomstore

import "fmt"

// Room is one location of the game world. Every field is immutable or a plain value, so a
// Room can be copied, cached and shared between goroutines freely: changing a field of a
// Room you got from a store changes only your copy.
type Room struct {
	// ID identifies the room; see ValidateID for what is accepted.
	ID string `json:"id"`
	// Name is the short title shown to players.
	Name string `json:"name"`
	// Description is the long text shown to players.
	Description string `json:"description"`
	// Plane, Zone and SubZone place the room in the world hierarchy; flux rules match on
	// them (see package flux).
	Plane   string `json:"plane"`
	Zone    string `json:"zone"`
	SubZone string `json:"sub_zone"`
	// Environment names the room's environment kind ("graveyard", "sanctuary", …).
	Environment string `json:"environment"`
	// Exits maps a direction to the id of the room it leads to.
	Exits Exits `json:"exits"`
	// Attributes holds game-specific JSON data.
	Attributes Attributes `json:"attributes"`
	// Version counts the writes of this room. Stores set it: PutRoom ignores the value it
	// is given and stores the previous version + 1 (1 for a new room).
	Version int64 `json:"version"`
}

// Validate checks the id and the exits of r. Stores call it in PutRoom before any I/O.
func (r Room) Validate() error {
	if err := ValidateID(r.ID); err != nil {
		return err
	}
	if err := r.Exits.validate(); err != nil {
		return fmt.Errorf("room %q: %w", r.ID, err)
	}
	return nil
}

// Equal reports whether r and o have the same content and version.
func (r Room) Equal(o Room) bool {
	return r.ID == o.ID && r.Name == o.Name && r.Description == o.Description &&
		r.Plane == o.Plane && r.Zone == o.Zone && r.SubZone == o.SubZone &&
		r.Environment == o.Environment && r.Exits.Equal(o.Exits) &&
		r.Attributes == o.Attributes && r.Version == o.Version
}
