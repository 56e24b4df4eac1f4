-- Enabled Access service tokens not seen for 90 days
-- Access service tokens not seen for 90 days (or never), still enabled.
-- Run: cfql --demo -f examples/stale_service_tokens.sql   (as a CI gate: cfql check --demo -f examples/stale_service_tokens.sql)
SELECT account_id, zone_id, id, name, client_id, created_at, last_seen_at, expires_at
  FROM cloudflare.access.service_tokens
 WHERE enabled
   AND (last_seen_at IS NULL OR last_seen_at < now() - INTERVAL '90 days')
 ORDER BY last_seen_at NULLS FIRST, name;
