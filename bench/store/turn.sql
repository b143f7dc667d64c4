-- The three writes of one chat turn, as ChatStore issues them (Sources/Storage/ChatStore.swift, enum SQL):
-- store the user message, open the assistant message (streaming), finalize it.
\set c random(1, 64)
INSERT INTO messages (id, conversation_id, role, content, status, model, provider, created_at, updated_at)
SELECT gen_random_uuid(), c.id, 'user', 'Hello there', 'complete', NULL, NULL, t.ts, t.ts
FROM conversations c,
     LATERAL (SELECT greatest(clock_timestamp(), (SELECT max(m.created_at) + interval '1 microsecond'
                                                  FROM messages m WHERE m.conversation_id = c.id)) AS ts) t
WHERE c.id = ('00000000-0000-0000-0000-' || lpad(:c::text, 12, '0'))::uuid AND c.owner_key_hash = 'bench';
INSERT INTO messages (id, conversation_id, role, content, status, model, provider, created_at, updated_at)
SELECT gen_random_uuid(), c.id, 'assistant', '', 'streaming', 'mock-echo', 'mock', t.ts, t.ts
FROM conversations c,
     LATERAL (SELECT greatest(clock_timestamp(), (SELECT max(m.created_at) + interval '1 microsecond'
                                                  FROM messages m WHERE m.conversation_id = c.id)) AS ts) t
WHERE c.id = ('00000000-0000-0000-0000-' || lpad(:c::text, 12, '0'))::uuid AND c.owner_key_hash = 'bench'
RETURNING id AS mid \gset
UPDATE messages m SET content = 'Hello from the bench, a typical short answer.', status = 'complete', finish_reason = 'stop',
       prompt_tokens = 9, completion_tokens = 12, total_tokens = 21, ttft_ms = 180, latency_ms = 950,
       error = NULL, updated_at = now()
FROM conversations c
WHERE m.id = :mid::uuid AND c.id = m.conversation_id AND c.owner_key_hash = 'bench';
