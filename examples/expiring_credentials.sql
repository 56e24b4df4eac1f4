-- Credentials that expire within 30 days (or have expired)
-- Every credential (user tokens, account tokens, Access service tokens) that expires
-- within the next 30 days, soonest first. Already expired ones are listed too, as
-- they may still be referenced by a pipeline.
-- Run: cfql --demo -f examples/expiring_credentials.sql   (as a CI gate: cfql check --demo -f examples/expiring_credentials.sql)
SELECT kind, scope, account_id, id, name, status, expires_at
  FROM cloudflare.audit.credentials
 WHERE expires_at < now() + INTERVAL '30 days'
 ORDER BY expires_at;
