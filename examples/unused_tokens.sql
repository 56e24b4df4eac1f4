-- API tokens unused for 90 days
-- API tokens (user and account owned) that were never used, or not used in 90 days:
-- candidates for revocation.
-- Run: cfql --demo -f examples/unused_tokens.sql   (as a CI gate: cfql check --demo -f examples/unused_tokens.sql)
SELECT kind, account_id, id, name, status, created_at, last_used_at,
       CASE WHEN last_used_at IS NULL THEN 'never used' ELSE 'unused for 90+ days' END AS finding
  FROM cloudflare.audit.credentials
 WHERE kind IN ('user_token', 'account_token')
   AND status = 'active'
   AND (last_used_at IS NULL OR last_used_at < now() - INTERVAL '90 days')
 ORDER BY last_used_at NULLS FIRST, name;
