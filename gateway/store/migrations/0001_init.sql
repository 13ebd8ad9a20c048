-- 0001_init: one table per collection (gateway.md §6.3). Identical SQL for
-- SQLite and PostgreSQL: TEXT, BIGINT, INTEGER, DOUBLE PRECISION, UNIQUE,
-- REFERENCES ... ON DELETE CASCADE|RESTRICT and CREATE INDEX only.
-- `entity` holds the canonical JSON of the entity (defaults applied); the
-- other columns exist for uniqueness, foreign keys and lookups.

CREATE TABLE config_revision (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  revision BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
INSERT INTO config_revision (id, revision, updated_at) VALUES (1, 0, 0);

CREATE TABLE certificates (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  tags TEXT,
  entity TEXT NOT NULL
);

CREATE TABLE services (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  tags TEXT,
  entity TEXT NOT NULL,
  name TEXT UNIQUE,
  client_certificate_id TEXT REFERENCES certificates (id) ON DELETE RESTRICT
);
CREATE INDEX services_client_certificate_id_idx ON services (client_certificate_id);

CREATE TABLE routes (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  tags TEXT,
  entity TEXT NOT NULL,
  name TEXT UNIQUE,
  service_id TEXT REFERENCES services (id) ON DELETE RESTRICT
);
CREATE INDEX routes_service_id_idx ON routes (service_id);

CREATE TABLE consumers (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  tags TEXT,
  entity TEXT NOT NULL,
  username TEXT UNIQUE,
  custom_id TEXT UNIQUE
);

CREATE TABLE plugins (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  tags TEXT,
  entity TEXT NOT NULL,
  name TEXT NOT NULL,
  instance_name TEXT UNIQUE,
  scope_key TEXT NOT NULL UNIQUE,
  route_id TEXT REFERENCES routes (id) ON DELETE CASCADE,
  service_id TEXT REFERENCES services (id) ON DELETE CASCADE,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE
);
CREATE INDEX plugins_route_id_idx ON plugins (route_id);
CREATE INDEX plugins_service_id_idx ON plugins (service_id);
CREATE INDEX plugins_consumer_id_idx ON plugins (consumer_id);

CREATE TABLE upstreams (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  tags TEXT,
  entity TEXT NOT NULL,
  name TEXT NOT NULL UNIQUE,
  client_certificate_id TEXT REFERENCES certificates (id) ON DELETE RESTRICT
);
CREATE INDEX upstreams_client_certificate_id_idx ON upstreams (client_certificate_id);

CREATE TABLE targets (
  id TEXT PRIMARY KEY,
  created_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL,
  tags TEXT,
  entity TEXT NOT NULL,
  upstream_id TEXT NOT NULL REFERENCES upstreams (id) ON DELETE CASCADE,
  target TEXT NOT NULL,
  UNIQUE (upstream_id, target)
);

CREATE TABLE snis (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  tags TEXT,
  entity TEXT NOT NULL,
  name TEXT NOT NULL UNIQUE,
  certificate_id TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE
);
CREATE INDEX snis_certificate_id_idx ON snis (certificate_id);

-- Key-auth credentials have no updated_at in their entity (as Kong); the
-- column records the row's last write.
CREATE TABLE keyauth_credentials (
  id TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  tags TEXT,
  entity TEXT NOT NULL,
  key TEXT NOT NULL UNIQUE,
  consumer_id TEXT NOT NULL REFERENCES consumers (id) ON DELETE CASCADE
);
CREATE INDEX keyauth_credentials_consumer_id_idx ON keyauth_credentials (consumer_id);
