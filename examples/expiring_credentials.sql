-- Credentials that expire within 30 days (or have expired)
-- Every credential (user and account API tokens, Access service tokens, Access mTLS
-- certificates, API Shield client certificates, mTLS store certificates; account and
-- zone level) that expires within the next 30 days, soonest first. Already expired ones are listed too, as
-- they may still be referenced by a pipeline.
-- Run: cfql --demo -f examples/expiring_credentials.sql   (as a CI gate: cfql check --demo -f examples/expiring_credentials.sql)
SELECT kind, scope, account_id, zone_id, id, name, status, expires_at
  FROM (SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NULL
        UNION ALL  -- zone-level credentials: a call per zone and kind
        SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NOT NULL)
 WHERE expires_at < now() + INTERVAL '30 days'
 ORDER BY expires_at, id;
