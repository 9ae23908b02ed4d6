// The database layout, as an ordered list of migrations. A file records the number of
// migrations applied in `schema_version`; opening applies the missing ones in one transaction.
// Never edit a shipped migration: append a new one.
//
// Samples are clustered by time (primary key ts, metric, series), not by series: each interval
// then appends to the end of one B-tree (a few hundred pages for 50k points) instead of dirtying
// one page per series, retention deletes a prefix, and "one metric over the last N minutes" is
// one contiguous range per interval. What needs a per-series answer (each series' newest
// sample, for retention and listing) lives in `series_last`, a narrow table updated by one
// statement per interval. `series_info` is the readable view, for people with the sqlite3 shell.

export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE metrics (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE,   -- Prometheus base name (no _total)
    kind  TEXT NOT NULL,          -- counter | gauge | histogram
    unit  TEXT NOT NULL           -- UCUM: By, s, {connection}, ...
  );

  CREATE TABLE series (
    id           INTEGER PRIMARY KEY,
    metric_id    INTEGER NOT NULL REFERENCES metrics(id),
    labels       TEXT NOT NULL,   -- canonical JSON object, keys sorted
    flow         INTEGER NOT NULL, -- 1 when the labels name a source_* and a dest_*
    aggregation  TEXT,            -- labels.aggregation, copied out for flow queries
    bounds       TEXT,            -- histograms: bucket upper bounds (JSON array); +Inf implied
    UNIQUE (metric_id, labels)
  );

  -- One row per series: the end of the last interval it has a sample in.
  CREATE TABLE series_last (
    series_id  INTEGER PRIMARY KEY,
    last_ms    INTEGER NOT NULL
  );
  CREATE INDEX series_last_by_time ON series_last (last_ms);

  -- One row per written interval; queries walk these and seek into samples.
  CREATE TABLE intervals (
    end_ms    INTEGER PRIMARY KEY,
    start_ms  INTEGER NOT NULL
  );

  CREATE TABLE samples (
    ts         INTEGER NOT NULL,  -- interval end, ms since the epoch
    metric_id  INTEGER NOT NULL,
    series_id  INTEGER NOT NULL,
    delta      REAL,              -- counter: increase this interval; gauge: value; histogram: count this interval
    value      REAL,              -- counter: cumulative; gauge: value; histogram: cumulative count
    sum        REAL,              -- histogram: sum of this interval's observations
    buckets    TEXT,              -- histogram: this interval's per-bucket counts (JSON array)
    PRIMARY KEY (ts, metric_id, series_id)
  ) WITHOUT ROWID;

  CREATE VIEW series_info AS
    SELECT s.id, m.name AS metric, m.kind, m.unit, s.labels, s.bounds, l.last_ms
    FROM series s JOIN metrics m ON m.id = s.metric_id LEFT JOIN series_last l ON l.series_id = s.id;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
