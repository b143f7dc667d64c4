-- 64 conversations with fixed ids for owner 'bench', shared by store-bench and pgbench.
INSERT INTO conversations (id, owner_key_hash, title, model)
SELECT ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'bench', 'bench ' || g, 'mock-echo'
FROM generate_series(1, 64) g
ON CONFLICT (id) DO NOTHING;
