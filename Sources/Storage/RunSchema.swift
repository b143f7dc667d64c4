/// The tables of multi-model turns (migration 9).
enum RunSchema {
    static let statements = [
        """
        CREATE TABLE model_runs (
            id uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
            turn_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
            conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            position int NOT NULL,
            mode text NOT NULL CHECK (mode IN ('all', 'fastest')),
            model text NOT NULL,
            deployment text,
            status text NOT NULL DEFAULT 'streaming'
                CHECK (status IN ('complete', 'streaming', 'error', 'cancelled', 'interrupted')),
            prompt_tokens int,
            completion_tokens int,
            cost_usd numeric(24, 12),
            ttft_ms int,
            latency_ms int,
            error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz)
        """,
        "CREATE INDEX model_runs_turn_idx ON model_runs (turn_id, position)",
        // Set on a multi-model turn's user message: the run whose answer later turns see.
        "ALTER TABLE messages ADD COLUMN selected_run uuid",
    ]
}
