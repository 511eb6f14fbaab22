package flux

import "github.com/gamepersist/gamepersist/roomstore"

// RoomInfoOf copies the fields flux reads from a roomstore.Room. It costs a struct copy
// (strings are shared, not copied).
func RoomInfoOf(r roomstore.Room) RoomInfo {
	return RoomInfo{ID: r.ID, Plane: r.Plane, Zone: r.Zone, SubZone: r.SubZone, Environment: r.Environment}
}

// RoomInfos fills dst (cleared first; allocated when nil) with RoomInfoOf of every room,
// keyed as rooms is, and returns it. Pass the previous tick's map to reuse it.
func RoomInfos(rooms map[string]roomstore.Room, dst map[string]RoomInfo) map[string]RoomInfo {
	if dst == nil {
		dst = make(map[string]RoomInfo, len(rooms))
	}
	clear(dst)
	for id, r := range rooms {
		dst[id] = RoomInfoOf(r)
	}
	return dst
}
