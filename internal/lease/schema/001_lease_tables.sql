-- One row per member (a live Runner renews its expires_at every renewal cycle).
CREATE TABLE IF NOT EXISTS {{.Members}} (
    member_id   text        PRIMARY KEY,
    incarnation text        NOT NULL,
    shards      integer     NOT NULL,
    joined_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
-- One row per shard ever held. A released shard keeps its row (owner NULL) so that its
-- epoch only ever grows: the epoch is the fencing token.
CREATE TABLE IF NOT EXISTS {{.Leases}} (
    shard       integer     PRIMARY KEY CHECK (shard >= 0),
    owner       text,
    epoch       bigint      NOT NULL CHECK (epoch >= 1),
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
