-- The publication schema of the releases before versioning (popsync/store.py at 41f4ac6),
-- as metadata.create_all made it on sqlite: what `popsync db upgrade` starts from.

CREATE TABLE metrics (
	run_date VARCHAR(10) NOT NULL, 
	scheme VARCHAR(2) NOT NULL, 
	line VARCHAR(16) NOT NULL, 
	province_code VARCHAR(2) NOT NULL, 
	participants INTEGER NOT NULL, 
	synchronized INTEGER NOT NULL, 
	needs_correction INTEGER NOT NULL, 
	needs_review INTEGER NOT NULL, 
	unmatched INTEGER NOT NULL, 
	sync_rate FLOAT NOT NULL, 
	rank INTEGER NOT NULL, 
	change FLOAT, 
	PRIMARY KEY (run_date, scheme, line, province_code)
);

CREATE TABLE publications (
	run_date VARCHAR(10) NOT NULL, 
	run_id INTEGER NOT NULL, 
	published_at DATETIME NOT NULL, 
	path TEXT NOT NULL, 
	PRIMARY KEY (run_date)
);

CREATE TABLE reason_counts (
	run_date VARCHAR(10) NOT NULL, 
	scheme VARCHAR(2) NOT NULL, 
	province_code VARCHAR(2) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	reason VARCHAR(32) NOT NULL, 
	count INTEGER NOT NULL, 
	PRIMARY KEY (run_date, scheme, province_code, status, reason)
);

CREATE TABLE run_locks (
	run_date VARCHAR(10) NOT NULL, 
	run_id INTEGER NOT NULL, 
	holder TEXT NOT NULL, 
	acquired_at DATETIME NOT NULL, 
	heartbeat_at DATETIME NOT NULL, 
	PRIMARY KEY (run_date)
);

CREATE TABLE runs (
	run_id INTEGER NOT NULL, 
	run_date VARCHAR(10) NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	status VARCHAR(16) NOT NULL, 
	message TEXT, 
	participants INTEGER, 
	quarantined INTEGER, 
	sync_rate FLOAT, 
	PRIMARY KEY (run_id)
);

CREATE INDEX ix_runs_run_date ON runs (run_date);
