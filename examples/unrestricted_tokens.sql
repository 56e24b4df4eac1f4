-- Active API tokens usable from any IP address
-- Active API tokens without a client IP restriction (no condition.request_ip.in).
-- Run: cfql --demo -f examples/unrestricted_tokens.sql   (as a CI gate: cfql check --demo -f examples/unrestricted_tokens.sql)
SELECT 'user_token' AS kind, CAST(NULL AS VARCHAR) AS account_id, id, name, expires_on
  FROM cloudflare.user.tokens
 WHERE status = 'active' AND condition->'request_ip'->'in' IS NULL
UNION ALL
SELECT 'account_token', account_id, id, name, expires_on
  FROM cloudflare.accounts.tokens
 WHERE status = 'active' AND condition->'request_ip'->'in' IS NULL
 ORDER BY kind, name;
