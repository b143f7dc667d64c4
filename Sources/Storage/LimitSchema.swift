/// Migration 5: API keys kept in the database, the daily usage ledger, and the shared counters that
/// make a limit hold across instances (docs/limits.md explains the design).
enum LimitSchema {
    static let statements: [String] = [
        "CREATE SEQUENCE api_keys_version",
        """
        CREATE TABLE api_keys (
            id uuid PRIMARY KEY,
            name text NOT NULL,
            key_hash text NOT NULL UNIQUE,
            key_prefix text NOT NULL,
            rpm int CHECK (rpm > 0),
            tpm bigint CHECK (tpm > 0),
            max_streams int CHECK (max_streams > 0),
            budget_usd numeric CHECK (budget_usd > 0),
            budget_period text CHECK (budget_period IN ('day', 'month')),
            models text[],
            created_at timestamptz NOT NULL DEFAULT now(),
            rotated_at timestamptz,
            revoked_at timestamptz,
            version bigint NOT NULL DEFAULT nextval('api_keys_version'),
            CHECK ((budget_usd IS NULL) = (budget_period IS NULL)))
        """,
        // Every instance asks "what changed since version V" a few times a second.
        "CREATE INDEX api_keys_version_idx ON api_keys (version)",
        // One row per key (the owner id), UTC day, public model and deployment.
        """
        CREATE TABLE usage_daily (
            owner text NOT NULL,
            day date NOT NULL,
            model text NOT NULL,
            deployment text NOT NULL,
            requests bigint NOT NULL DEFAULT 0,
            prompt_tokens bigint NOT NULL DEFAULT 0,
            completion_tokens bigint NOT NULL DEFAULT 0,
            cost_usd numeric NOT NULL DEFAULT 0,
            estimated_requests bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (owner, day, model, deployment))
        """,
        "CREATE INDEX usage_daily_day_idx ON usage_daily (day)",
        // A window per limited subject ("k:<key>:rpm", "d:<deployment>:tpm", …): when it started
        // and how much of it is used (requests, tokens or picodollars).
        """
        CREATE TABLE limit_windows (
            subject text PRIMARY KEY,
            window_start timestamptz NOT NULL,
            used numeric NOT NULL DEFAULT 0)
        """,
        // Concurrent-stream slots each live instance holds for a subject.
        """
        CREATE TABLE stream_slots (
            subject text NOT NULL,
            writer text NOT NULL,
            held int NOT NULL CHECK (held >= 0),
            PRIMARY KEY (subject, writer))
        """,
        windowsFunction,
        slotsFunction,
    ]

    /// Claims, charges, releases and reads of many windows in one call. Per element: `op` is
    /// `claim` (grant up to `amount` of what is left under `limit`), `charge` (add `amount`, no
    /// limit: tokens and cost, known after the answer), `release` (give back `amount` claimed in
    /// window `window_id` and not used) or `read`. `window_ms` > 0 is a window that starts at its
    /// first use and lasts that long; -1 and -2 are the UTC calendar day and month. The caller
    /// sorts subjects, so concurrent calls lock rows in one order and never deadlock.
    static let windowsFunction = """
        CREATE FUNCTION chatrelay_windows(p_subjects text[], p_ops text[], p_amounts numeric[], p_limits numeric[],
                                          p_window_ms bigint[], p_window_ids bigint[])
        RETURNS TABLE (r_subject text, r_granted numeric, r_used numeric, r_reset_ms bigint, r_window_id bigint)
        LANGUAGE plpgsql AS $fn$
        DECLARE
            i int;
            now_ts timestamptz := clock_timestamp();
            fresh timestamptz;
            w_start timestamptz;
            w_used numeric;
            w_ms bigint;
            w_end timestamptz;
            g numeric;
        BEGIN
            FOR i IN 1 .. coalesce(array_length(p_subjects, 1), 0) LOOP
                w_ms := p_window_ms[i];
                fresh := CASE w_ms
                    WHEN -1 THEN date_trunc('day', now_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                    WHEN -2 THEN date_trunc('month', now_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                    ELSE now_ts END;
                INSERT INTO limit_windows (subject, window_start, used) VALUES (p_subjects[i], fresh, 0)
                    ON CONFLICT (subject) DO NOTHING;
                SELECT lw.window_start, lw.used INTO w_start, w_used FROM limit_windows lw
                    WHERE lw.subject = p_subjects[i] FOR UPDATE;
                IF (w_ms > 0 AND w_start + w_ms * interval '1 millisecond' <= now_ts) OR (w_ms < 0 AND w_start < fresh) THEN
                    w_start := fresh;
                    w_used := 0;
                END IF;
                g := 0;
                IF p_ops[i] = 'claim' THEN
                    g := greatest(least(p_amounts[i], p_limits[i] - w_used), 0);
                    w_used := w_used + g;
                ELSIF p_ops[i] = 'charge' THEN
                    g := greatest(p_amounts[i], 0);
                    w_used := w_used + g;
                ELSIF p_ops[i] = 'release' AND p_window_ids[i] = (extract(epoch FROM w_start) * 1000)::bigint THEN
                    g := least(greatest(p_amounts[i], 0), w_used);
                    w_used := w_used - g;
                END IF;
                UPDATE limit_windows SET window_start = w_start, used = w_used WHERE subject = p_subjects[i];
                w_end := CASE w_ms
                    WHEN -1 THEN w_start + interval '1 day'
                    WHEN -2 THEN w_start + interval '1 month'
                    ELSE w_start + w_ms * interval '1 millisecond' END;
                r_subject := p_subjects[i];
                r_granted := g;
                r_used := w_used;
                r_reset_ms := greatest(ceil(extract(epoch FROM (w_end - now_ts)) * 1000), 0)::bigint;
                r_window_id := (extract(epoch FROM w_start) * 1000)::bigint;
                RETURN NEXT;
            END LOOP;
        END
        $fn$
        """

    /// Concurrent-stream slots: a positive `delta` claims up to that many slots for `writer`
    /// within `limit` across every live instance (slots of instances with no session left are
    /// dropped first); a negative one gives slots back. Returns what was granted and the total held.
    static let slotsFunction = """
        CREATE FUNCTION chatrelay_slots(p_subjects text[], p_writer text, p_deltas int[], p_limits int[], p_prefix text)
        RETURNS TABLE (r_subject text, r_granted int, r_held int)
        LANGUAGE plpgsql AS $fn$
        DECLARE
            i int;
            total int;
            g int;
        BEGIN
            FOR i IN 1 .. coalesce(array_length(p_subjects, 1), 0) LOOP
                PERFORM pg_advisory_xact_lock(hashtextextended(p_subjects[i], 0));
                g := 0;
                IF p_deltas[i] > 0 THEN
                    DELETE FROM stream_slots s WHERE s.subject = p_subjects[i] AND s.writer <> p_writer
                        AND s.writer NOT IN (SELECT substr(application_name, length(p_prefix) + 1) FROM pg_stat_activity
                                             WHERE starts_with(application_name, p_prefix));
                    SELECT coalesce(sum(s.held), 0) INTO total FROM stream_slots s WHERE s.subject = p_subjects[i];
                    g := greatest(least(p_deltas[i], p_limits[i] - total), 0);
                ELSE
                    SELECT -least(-p_deltas[i], coalesce((SELECT s.held FROM stream_slots s
                        WHERE s.subject = p_subjects[i] AND s.writer = p_writer), 0)) INTO g;
                END IF;
                INSERT INTO stream_slots AS s (subject, writer, held) VALUES (p_subjects[i], p_writer, greatest(g, 0))
                    ON CONFLICT (subject, writer) DO UPDATE SET held = s.held + g;
                r_subject := p_subjects[i];
                r_granted := g;
                SELECT coalesce(sum(s.held), 0) INTO r_held FROM stream_slots s WHERE s.subject = p_subjects[i];
                RETURN NEXT;
            END LOOP;
        END
        $fn$
        """
}
