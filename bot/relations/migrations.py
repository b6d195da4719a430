"""The relationship log's schema: sqlite-utils migrations, applied in order when a Store opens.

Each runs once per database, in its own transaction, and is recorded by name in the
``_sqlite_migrations`` table: existing databases depend on these names and this order, so a
migration is never renamed, reordered or edited once released, only appended (with the prefix
your change was given). Tables and columns are a contract operators' queries rely on
(docs/relationships.md): add, never rename.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("brandbot")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE fans (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            external_id TEXT NOT NULL,
            persona TEXT NOT NULL,
            display_name TEXT,
            language TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            dialog_state TEXT,
            stage TEXT NOT NULL DEFAULT 'stranger',
            score REAL NOT NULL DEFAULT 0,
            score_at TEXT,
            subscribed INTEGER NOT NULL DEFAULT 0,
            subscribed_at TEXT,
            blocked INTEGER NOT NULL DEFAULT 0,
            handoff INTEGER NOT NULL DEFAULT 0,
            misses INTEGER NOT NULL DEFAULT 0,
            tags TEXT NOT NULL DEFAULT '[]',
            voice_memory TEXT NOT NULL DEFAULT '{}',
            referred_by INTEGER REFERENCES fans(id),
            referral_code TEXT UNIQUE,
            source_code TEXT
        );
        CREATE UNIQUE INDEX fans_identity ON fans(persona, channel, external_id);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            fan_id INTEGER NOT NULL REFERENCES fans(id),
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            text TEXT NOT NULL,
            intent TEXT,
            confidence REAL,
            state_before TEXT,
            state_after TEXT,
            platform_msg_id TEXT,
            created_at TEXT NOT NULL,
            channel TEXT,
            language TEXT,
            reply_key TEXT,
            in_reply_to INTEGER REFERENCES messages(id),
            kind TEXT NOT NULL DEFAULT 'message'
        );
        CREATE UNIQUE INDEX messages_platform_id ON messages(fan_id, platform_msg_id)
            WHERE direction = 'in' AND platform_msg_id IS NOT NULL;
        CREATE INDEX messages_fan ON messages(fan_id, id);
        CREATE INDEX messages_reply ON messages(in_reply_to);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            fan_id INTEGER REFERENCES fans(id),
            kind TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE INDEX events_fan_kind ON events(fan_id, kind, created_at);
        CREATE TABLE referrals (
            id INTEGER PRIMARY KEY,
            referrer_id INTEGER REFERENCES fans(id),
            referred_id INTEGER NOT NULL REFERENCES fans(id),
            code TEXT NOT NULL,
            channel TEXT,
            created_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX referrals_referred ON referrals(referred_id);
        CREATE TABLE broadcasts (
            id INTEGER PRIMARY KEY,
            persona TEXT NOT NULL,
            text TEXT NOT NULL,
            audience TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id),
            fan_id INTEGER NOT NULL REFERENCES fans(id),
            status TEXT NOT NULL,
            error TEXT,
            sent_at TEXT
        );
        CREATE UNIQUE INDEX deliveries_once ON deliveries(broadcast_id, fan_id);
        """
    )


@migrations()
def m002_relationship_marketing(db: sqlite_utils.Database) -> None:
    """Campaign codes, KOL lookups, resumable broadcasts and the operator desk (issue 6)."""
    db.executescript(
        """
        CREATE TABLE campaigns (
            id INTEGER PRIMARY KEY,
            persona TEXT NOT NULL,
            name TEXT NOT NULL,
            code TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE INDEX fans_referred_by ON fans(referred_by) WHERE referred_by IS NOT NULL;
        CREATE INDEX fans_persona_handoff ON fans(persona, handoff) WHERE handoff = 1;
        CREATE INDEX referrals_code ON referrals(code);
        CREATE INDEX deliveries_status ON deliveries(broadcast_id, status);
        ALTER TABLE broadcasts ADD COLUMN status TEXT NOT NULL DEFAULT 'done';
        ALTER TABLE broadcasts ADD COLUMN finished_at TEXT;
        ALTER TABLE deliveries ADD COLUMN channel TEXT;
        """
    )


@migrations()
def m003_topic_calendar(db: sqlite_utils.Database) -> None:
    """Broadcasts sent from a persona's topic calendar: once per topic, text per language."""
    db.executescript(
        """
        ALTER TABLE broadcasts ADD COLUMN topic TEXT;
        ALTER TABLE broadcasts ADD COLUMN texts TEXT;
        CREATE UNIQUE INDEX broadcasts_topic ON broadcasts(persona, topic)
            WHERE topic IS NOT NULL;
        """
    )


@migrations()
def m004_web_outbox(db: sqlite_utils.Database) -> None:
    """Messages waiting for a web chat fan's page to fetch them (operator replies, timeouts).

    Durable so that another process (``brandbot handoff reply``) can queue for a web fan. A
    forgotten fan's waiting messages go with them (the triggers: anonymised or deleted).
    """
    db.executescript(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            fan_id INTEGER NOT NULL REFERENCES fans(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            reply_key TEXT,
            language TEXT,
            created_at TEXT NOT NULL,
            delivered_at TEXT
        );
        CREATE INDEX outbox_pending ON outbox(fan_id, id) WHERE delivered_at IS NULL;
        CREATE TRIGGER outbox_forget_anonymised AFTER UPDATE OF external_id ON fans
            WHEN new.external_id LIKE 'forgotten-%'
            BEGIN DELETE FROM outbox WHERE fan_id = new.id; END;
        """
    )


@migrations()
def m005_desk_topics(db: sqlite_utils.Database) -> None:
    """The Telegram operator group: one forum topic per handoff (bot/channels/telegram_desk.py)."""
    db.executescript(
        """
        CREATE TABLE desk_topics (
            id INTEGER PRIMARY KEY,
            fan_id INTEGER NOT NULL REFERENCES fans(id) ON DELETE CASCADE,
            chat_id INTEGER NOT NULL,
            thread_id INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            closed_at TEXT
        );
        CREATE UNIQUE INDEX desk_topics_open ON desk_topics(fan_id) WHERE closed_at IS NULL;
        CREATE INDEX desk_topics_thread ON desk_topics(chat_id, thread_id);
        """
    )


@migrations()
def m006_outbox_taken_by(db: sqlite_utils.Database) -> None:
    # Which web request (its msg_id) took each waiting message, so a retried request gets
    # them again instead of losing them.
    db.executescript(
        """
        ALTER TABLE outbox ADD COLUMN taken_by TEXT;
        CREATE INDEX outbox_taken ON outbox(fan_id, taken_by) WHERE taken_by IS NOT NULL;
        """
    )


@migrations()
def m007_referrals_count(db: sqlite_utils.Database) -> None:
    # How many fans each fan brought in, kept by triggers whoever writes `referred_by`: a turn
    # re-tags KOLs, and for the many fans who never brought anyone (0) it skips the look-up.
    db.executescript(
        """
        ALTER TABLE fans ADD COLUMN referrals INTEGER NOT NULL DEFAULT 0;
        UPDATE fans SET referrals = (SELECT count(*) FROM fans c WHERE c.referred_by = fans.id);
        CREATE TRIGGER fans_referrals_insert AFTER INSERT ON fans
            WHEN NEW.referred_by IS NOT NULL
        BEGIN
            UPDATE fans SET referrals = referrals + 1 WHERE id = NEW.referred_by;
        END;
        CREATE TRIGGER fans_referrals_update AFTER UPDATE OF referred_by ON fans
            WHEN OLD.referred_by IS NOT NEW.referred_by
        BEGIN
            UPDATE fans SET referrals = referrals - 1 WHERE id = OLD.referred_by;
            UPDATE fans SET referrals = referrals + 1 WHERE id = NEW.referred_by;
        END;
        CREATE TRIGGER fans_referrals_delete AFTER DELETE ON fans
            WHEN OLD.referred_by IS NOT NULL
        BEGIN
            UPDATE fans SET referrals = referrals - 1 WHERE id = OLD.referred_by;
        END;
        """
    )


@migrations()
def m008_deliveries_sent_per_fan(db: sqlite_utils.Database) -> None:
    # A newsletter's plan counts the WeChat customer-service messages already spent on each
    # recent fan (bot/relations/broadcast.py): without this, one scan of every delivery ever
    # made per such fan (77 s for 2,000 of them beside 1,000,000 deliveries).
    db.executescript(
        """
        CREATE INDEX deliveries_sent_fan ON deliveries(fan_id, sent_at) WHERE status = 'sent';
        """
    )


@migrations()
def m009_wechat_nonces(db: sqlite_utils.Database) -> None:
    # WeChat plain/compatible mode signs the URL, not the body: each signed (timestamp, nonce)
    # is accepted once, remembered while the timestamp is fresh (bot/channels/wechat_replay.py).
    # An unsubscribe pushed without a body signature is not trusted at once: the fan is
    # forgotten when it is due, unless they show up again first (bot/channels/wechat_unfollow.py).
    db.executescript(
        """
        CREATE TABLE wechat_nonces (
            app_id TEXT NOT NULL,
            timestamp TEXT NOT NULL,
            nonce TEXT NOT NULL,
            digest TEXT NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (app_id, timestamp, nonce)
        ) WITHOUT ROWID;
        CREATE INDEX wechat_nonces_expiry ON wechat_nonces(expires_at);
        CREATE TABLE wechat_unfollows (
            persona TEXT NOT NULL,
            openid TEXT NOT NULL,
            push_id TEXT NOT NULL,
            received_at TEXT NOT NULL,
            due_at REAL NOT NULL,
            PRIMARY KEY (persona, openid)
        ) WITHOUT ROWID;
        """
    )


@migrations()
def m011_influence_sums(db: sqlite_utils.Database) -> None:
    """What a turn needs to re-tag KOLs without reading everyone they brought in (issue item 14).

    ``referrals2``: how many fans the fans a fan brought in brought in (second level), kept by
    triggers like ``referrals``. ``kin_score`` / ``kin2_score``: the sums of those fans' scores
    (first / second level), decayed to ``kin_at``; kept by the engine as scores move
    (bot/relations/kols.py ``pass_on``), NULL ``kin_at`` = not known, computed from the tree
    when first needed. A change in the tree under a fan (``referred_by`` rewritten for a fan
    who has a score or referrals, a fan deleted, a fan inserted with a score) makes the sums of
    the two fans above unknown again, whoever writes it.
    """
    db.executescript(
        """
        ALTER TABLE fans ADD COLUMN referrals2 INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE fans ADD COLUMN kin_score REAL;
        ALTER TABLE fans ADD COLUMN kin2_score REAL;
        ALTER TABLE fans ADD COLUMN kin_at TEXT;
        UPDATE fans SET referrals2 = (SELECT coalesce(sum(c.referrals), 0) FROM fans c
                                      WHERE c.referred_by = fans.id)
            WHERE referrals > 0;
        CREATE TRIGGER fans_referrals2_count AFTER UPDATE OF referrals ON fans
            WHEN NEW.referred_by IS NOT NULL AND OLD.referrals != NEW.referrals
        BEGIN
            UPDATE fans SET referrals2 = referrals2 + NEW.referrals - OLD.referrals
                WHERE id = NEW.referred_by;
        END;
        CREATE TRIGGER fans_referrals2_move AFTER UPDATE OF referred_by ON fans
            WHEN OLD.referred_by IS NOT NEW.referred_by AND NEW.referrals > 0
        BEGIN
            UPDATE fans SET referrals2 = referrals2 - NEW.referrals WHERE id = OLD.referred_by;
            UPDATE fans SET referrals2 = referrals2 + NEW.referrals WHERE id = NEW.referred_by;
        END;
        CREATE TRIGGER fans_referrals2_delete AFTER DELETE ON fans
            WHEN OLD.referred_by IS NOT NULL AND OLD.referrals > 0
        BEGIN
            UPDATE fans SET referrals2 = referrals2 - OLD.referrals WHERE id = OLD.referred_by;
        END;
        CREATE TRIGGER fans_kin_moved AFTER UPDATE OF referred_by ON fans
            WHEN OLD.referred_by IS NOT NEW.referred_by AND (NEW.score != 0 OR NEW.referrals > 0)
        BEGIN
            UPDATE fans SET kin_at = NULL WHERE id IN (
                OLD.referred_by, NEW.referred_by,
                (SELECT referred_by FROM fans WHERE id = OLD.referred_by),
                (SELECT referred_by FROM fans WHERE id = NEW.referred_by));
        END;
        CREATE TRIGGER fans_kin_deleted AFTER DELETE ON fans
            WHEN OLD.referred_by IS NOT NULL AND (OLD.score != 0 OR OLD.referrals > 0)
        BEGIN
            UPDATE fans SET kin_at = NULL WHERE id IN (
                OLD.referred_by, (SELECT referred_by FROM fans WHERE id = OLD.referred_by));
        END;
        CREATE TRIGGER fans_kin_inserted AFTER INSERT ON fans
            WHEN NEW.referred_by IS NOT NULL AND NEW.score != 0
        BEGIN
            UPDATE fans SET kin_at = NULL WHERE id IN (
                NEW.referred_by, (SELECT referred_by FROM fans WHERE id = NEW.referred_by));
        END;
        """
    )


@migrations()
def m011_messages_by_time(db: sqlite_utils.Database) -> None:
    # `brandbot report --since` counts the messages of a period: without this, every message of
    # every fan was looked up (10 M on a 1 M-fan log, minutes). It covers what the counts per
    # day and intent read, so they need no table row. Times grow with ids, so each turn adds at
    # the end of this index (an existing log pays ~30 s once for 10 M messages).
    db.executescript(
        "CREATE INDEX messages_created ON messages(created_at, direction, kind, intent);"
    )


@migrations()
def m014_jobs(db: sqlite_utils.Database) -> None:
    # Scheduled work the daemon runs itself (bot/relations/jobs.py): calendar topics, handoff
    # expiry, later scheduled broadcasts and form timeouts. A row survives restarts; claiming
    # it is one UPDATE inside BEGIN IMMEDIATE, so two daemons never run one job twice.
    db.executescript(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            key TEXT UNIQUE,
            payload TEXT NOT NULL DEFAULT '{}',
            run_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL DEFAULT 5,
            runs INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            lease_until TEXT,
            last_error TEXT,
            last_run_at TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX jobs_due ON jobs(run_at) WHERE status IN ('pending', 'running');
        """
    )
