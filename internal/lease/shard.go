package lease

import (
	"crypto/md5" //nolint:gosec // a stable, SQL-reproducible spread of ids, not a security use
	"encoding/binary"
	"strconv"
)

// ShardOf maps a player id to its shard in [0, shards): the first four bytes of the MD5
// digest of the id's UTF-8 bytes, read big-endian as an unsigned 32-bit number, modulo
// shards. The mapping is part of the stored data's meaning and never changes; ShardSQL
// computes the same number inside PostgreSQL. It costs one MD5 of the id (about 100 ns
// for a short id) and allocates nothing. shards must be at least 1.
func ShardOf(playerID string, shards int) int {
	sum := md5.Sum([]byte(playerID)) //nolint:gosec // see the import
	return int(binary.BigEndian.Uint32(sum[:4]) % uint32(shards))
}

// ShardSQL returns an integer SQL expression computing ShardOf(expr, shards) in
// PostgreSQL, for a load query that reads only the owned shards' players (for example
// "WHERE "+ShardSQL("p.player_id", 64)+" = ANY($1)"). expr is spliced in as it is: pass a
// column reference or a parameter, never user input. The database encoding must be UTF-8
// (md5 reads the stored bytes). Per row it costs one md5 call and a few casts.
func ShardSQL(expr string, shards int) string {
	return "((('x' || substr(md5(" + expr + "), 1, 8))::bit(32)::bigint % " + strconv.Itoa(shards) + ")::integer)"
}
