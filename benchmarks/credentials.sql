-- cfql's credentials benchmark: controls over every credential kind cfql reads (user and
-- account API tokens, Access service tokens at account and zone level). Each control is a
-- SELECT returning one row per credential at fault, with `kind` and `id` (what a baseline
-- matches on). Run it with `cfql check --benchmark credentials`; list it with
-- `cfql check --list`. The metadata lines (`-- @id:` ...) are documented in the README.
-- Controls over every credential read zone-level service tokens too (a call per zone).

-- Credentials that expire within {{ days }} days
-- @id: cred-expiring-soon
-- @severity: high
-- @tags: expiry, rotation
-- @var: days=30
-- @rationale: A credential that expires unnoticed breaks the deployment, exporter or
--   tunnel that uses it, usually at night. Rotating ahead of time is a change, not an outage.
-- @remediation: Roll the token (or rotate the service token, or renew the certificate),
--   hand the new secret to its user, then set the next expiry.
-- @fix[kind=user_token]: EXEC cloudflare.user.tokens.roll @token_id='{id}'
-- @fix[kind=account_token]: EXEC cloudflare.accounts.tokens.roll @account_id='{account_id}', @token_id='{id}'
-- @fix[kind=service_token,scope=account]: EXEC cloudflare.access.service_tokens.rotate @account_id='{account_id}', @service_token_id='{id}'
-- @fix[kind=service_token,scope=zone]: EXEC cloudflare.access.service_tokens.rotate @zone_id='{zone_id}', @service_token_id='{id}'
WITH every_credential AS (
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NULL
  UNION ALL  -- zone-level service tokens: a call per zone
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NOT NULL)
SELECT kind, scope, account_id, zone_id, id, name, expires_at
  FROM every_credential
 WHERE status = 'active'
   AND expires_at >= now() AND expires_at < now() + INTERVAL '{{ days }} days'
 ORDER BY expires_at, id;

-- Expired credentials still present
-- @id: cred-expired-present
-- @severity: medium
-- @tags: expiry, hygiene
-- @rationale: An expired credential no longer works but is still listed: it hides the
--   live ones in every review, and a pipeline may still be configured with it.
-- @remediation: Find what still references it, then delete it.
-- @fix[kind=user_token]: DELETE FROM cloudflare.user.tokens WHERE id = '{id}'
-- @fix[kind=account_token]: DELETE FROM cloudflare.accounts.tokens WHERE account_id = '{account_id}' AND id = '{id}'
-- @fix[kind=service_token,scope=account]: DELETE FROM cloudflare.access.service_tokens WHERE account_id = '{account_id}' AND id = '{id}'
-- @fix[kind=service_token,scope=zone]: DELETE FROM cloudflare.access.service_tokens WHERE zone_id = '{zone_id}' AND id = '{id}'
WITH every_credential AS (
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NULL
  UNION ALL  -- zone-level service tokens: a call per zone
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NOT NULL)
SELECT kind, scope, account_id, zone_id, id, name, expires_at
  FROM every_credential
 WHERE expires_at < now()
 ORDER BY expires_at, id;

-- API tokens with no expiry
-- @id: token-no-expiry
-- @severity: medium
-- @tags: expiry, api_token
-- @rationale: A token without expires_on works until someone remembers to revoke it; a
--   leaked copy stays useful for as long.
-- @remediation: Set an expiry that matches the token's use (90 days for automation is common).
-- @fix[kind=user_token]: UPDATE cloudflare.user.tokens SET expires_on = now() + INTERVAL '90 days' WHERE id = '{id}'
-- @fix[kind=account_token]: UPDATE cloudflare.accounts.tokens SET expires_on = now() + INTERVAL '90 days' WHERE account_id = '{account_id}' AND id = '{id}'
WITH every_credential AS (
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NULL
  UNION ALL  -- zone-level service tokens: a call per zone
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NOT NULL)
SELECT kind, account_id, id, name, created_at
  FROM every_credential
 WHERE kind IN ('user_token', 'account_token') AND status = 'active' AND expires_at IS NULL
 ORDER BY kind, name, id;

-- Service tokens that never expire
-- @id: service-token-no-expiry
-- @severity: high
-- @tags: expiry, service_token
-- @rationale: A service token is a client id and secret pasted into a machine; one that
--   never expires is never rotated by necessity.
-- @remediation: Give it a duration (8760h is a year) and rotate it before it ends.
-- @fix[scope=account]: UPDATE cloudflare.access.service_tokens SET duration = '8760h' WHERE account_id = '{account_id}' AND id = '{id}'
-- @fix[scope=zone]: UPDATE cloudflare.access.service_tokens SET duration = '8760h' WHERE zone_id = '{zone_id}' AND id = '{id}'
WITH every_credential AS (
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NULL
  UNION ALL  -- zone-level service tokens: a call per zone
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NOT NULL)
SELECT kind, scope, account_id, zone_id, id, name, created_at
  FROM every_credential
 WHERE kind = 'service_token' AND status = 'active' AND expires_at IS NULL
 ORDER BY name, id;

-- Credentials never used, issued more than 30 days ago
-- @id: cred-never-used
-- @severity: medium
-- @tags: usage, hygiene
-- @rationale: A credential nobody used in a month after it was issued is most likely not
--   needed; it is still a secret that can leak.
-- @remediation: Confirm with its owner, then delete it.
-- @fix[kind=user_token]: DELETE FROM cloudflare.user.tokens WHERE id = '{id}'
-- @fix[kind=account_token]: DELETE FROM cloudflare.accounts.tokens WHERE account_id = '{account_id}' AND id = '{id}'
-- @fix[kind=service_token,scope=account]: DELETE FROM cloudflare.access.service_tokens WHERE account_id = '{account_id}' AND id = '{id}'
-- @fix[kind=service_token,scope=zone]: DELETE FROM cloudflare.access.service_tokens WHERE zone_id = '{zone_id}' AND id = '{id}'
WITH every_credential AS (
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NULL
  UNION ALL  -- zone-level service tokens: a call per zone
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NOT NULL)
SELECT kind, scope, account_id, zone_id, id, name, created_at
  FROM every_credential
 WHERE kind IN ('user_token', 'account_token', 'service_token')  -- certificates report no use
   AND status = 'active' AND last_used_at IS NULL
   AND created_at < now() - INTERVAL '30 days'
 ORDER BY created_at, id;

-- Credentials unused for 90 days
-- @id: cred-unused-90d
-- @severity: medium
-- @tags: usage, hygiene
-- @rationale: A credential idle for three months belongs to something that stopped
--   running, or to someone who left.
-- @remediation: Disable it, wait for complaints, then delete it.
-- @fix[kind=user_token]: UPDATE cloudflare.user.tokens SET status = 'disabled' WHERE id = '{id}'
-- @fix[kind=account_token]: UPDATE cloudflare.accounts.tokens SET status = 'disabled' WHERE account_id = '{account_id}' AND id = '{id}'
-- @fix[kind=service_token,scope=account]: UPDATE cloudflare.access.service_tokens SET enabled = false WHERE account_id = '{account_id}' AND id = '{id}'
-- @fix[kind=service_token,scope=zone]: UPDATE cloudflare.access.service_tokens SET enabled = false WHERE zone_id = '{zone_id}' AND id = '{id}'
WITH every_credential AS (
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NULL
  UNION ALL  -- zone-level service tokens: a call per zone
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NOT NULL)
SELECT kind, scope, account_id, zone_id, id, name, last_used_at
  FROM every_credential
 WHERE status = 'active' AND last_used_at < now() - INTERVAL '90 days'
 ORDER BY last_used_at, id;

-- API tokens usable from any address
-- @id: token-no-ip-restriction
-- @severity: low
-- @tags: network, api_token
-- @rationale: A token with a client IP allow-list is useless to whoever copies it off the
--   machine; one without works from anywhere.
-- @remediation: Add the addresses its user calls from to condition.request_ip.in.
-- @fix[kind=user_token]: UPDATE cloudflare.user.tokens SET condition = '{"request_ip": {"in": ["203.0.113.0/24"]}}' WHERE id = '{id}'
-- @fix[kind=account_token]: UPDATE cloudflare.accounts.tokens SET condition = '{"request_ip": {"in": ["203.0.113.0/24"]}}' WHERE account_id = '{account_id}' AND id = '{id}'
SELECT 'user_token' AS kind, CAST(NULL AS VARCHAR) AS account_id, id, name
  FROM cloudflare.user.tokens
 WHERE status = 'active' AND COALESCE(json_length(condition, 'request_ip', 'in'), 0) = 0
UNION ALL
SELECT 'account_token', account_id, id, name
  FROM cloudflare.accounts.tokens
 WHERE status = 'active' AND COALESCE(json_length(condition, 'request_ip', 'in'), 0) = 0
 ORDER BY kind, name, id;

-- API tokens not rolled in 365 days
-- @id: token-not-rolled-365d
-- @severity: low
-- @tags: rotation, api_token
-- @rationale: A secret that has not changed in a year has been in every laptop, CI log and
--   backup of that year.
-- @remediation: Roll it and hand the new value to its user.
-- @fix[kind=user_token]: EXEC cloudflare.user.tokens.roll @token_id='{id}'
-- @fix[kind=account_token]: EXEC cloudflare.accounts.tokens.roll @account_id='{account_id}', @token_id='{id}'
SELECT 'user_token' AS kind, CAST(NULL AS VARCHAR) AS account_id, id, name, modified_on
  FROM cloudflare.user.tokens
 WHERE status = 'active' AND modified_on < now() - INTERVAL '365 days'
UNION ALL
SELECT 'account_token', account_id, id, name, modified_on
  FROM cloudflare.accounts.tokens
 WHERE status = 'active' AND modified_on < now() - INTERVAL '365 days'
 ORDER BY modified_on, id;

-- Disabled credentials left in place
-- @id: cred-disabled-lingering
-- @severity: low
-- @tags: hygiene
-- @rationale: A disabled credential can be enabled again by anyone who can edit it; if it
--   is not coming back, it should not exist.
-- @remediation: Delete it once you are sure it is not coming back.
-- @fix[kind=user_token]: DELETE FROM cloudflare.user.tokens WHERE id = '{id}'
-- @fix[kind=account_token]: DELETE FROM cloudflare.accounts.tokens WHERE account_id = '{account_id}' AND id = '{id}'
-- @fix[kind=service_token,scope=account]: DELETE FROM cloudflare.access.service_tokens WHERE account_id = '{account_id}' AND id = '{id}'
-- @fix[kind=service_token,scope=zone]: DELETE FROM cloudflare.access.service_tokens WHERE zone_id = '{zone_id}' AND id = '{id}'
WITH every_credential AS (
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NULL
  UNION ALL  -- zone-level service tokens: a call per zone
  SELECT * FROM cloudflare.audit.credentials WHERE zone_id IS NOT NULL)
SELECT kind, scope, account_id, zone_id, id, name
  FROM every_credential
 WHERE status = 'disabled'
 ORDER BY kind, name, id;

-- API tokens that can write to every zone or every account
-- @id: token-write-everything
-- @severity: critical
-- @tags: least-privilege, api_token
-- @rationale: One leaked token with a write permission on every zone (or account) can
--   change DNS, WAF or settings of all of them. Least privilege names the zones it needs.
-- @remediation: Replace the wildcard resource with the accounts or zones the token works on
--   (cloudflare.audit.permissions shows each grant; UPDATE the token's policies).
SELECT kind, owner_account_id AS account_id, token_id AS id, token_name AS name,
       string_agg(DISTINCT permission_group_name, ', ') AS write_groups
  FROM cloudflare.audit.permissions
 WHERE status = 'active' AND effect = 'allow' AND access = 'write'
   AND resource_breadth = 'all' AND applies IS NOT FALSE
 GROUP BY kind, owner_account_id, token_id, token_name
 ORDER BY kind, name, id;

-- API tokens with R2 write access beyond one bucket
-- @id: token-r2-unscoped
-- @severity: high
-- @tags: least-privilege, r2, api_token
-- @rationale: R2 grants can name one bucket; a grant on an account (or every account) lets
--   a backup job overwrite every bucket.
-- @remediation: Grant the R2 permission on com.cloudflare.edge.r2.bucket.<account>_<jurisdiction>_<bucket>.
SELECT kind, owner_account_id AS account_id, token_id AS id, token_name AS name,
       string_agg(DISTINCT permission_group_name, ', ') AS r2_groups
  FROM cloudflare.audit.permissions
 WHERE status = 'active' AND effect = 'allow' AND access = 'write'
   AND permission_group_name LIKE '%R2%'
   AND NOT (resource_type = 'r2_bucket' AND resource_breadth = 'one')
 GROUP BY kind, owner_account_id, token_id, token_name
 ORDER BY kind, name, id;

-- Account tokens granted writes they did not make in 30 days
-- @id: token-unused-write
-- @severity: medium
-- @tags: least-privilege, usage, api_token
-- @rationale: A write grant a token has not used in a month can likely become its Read
--   twin. Matched by token from Audit Logs v2: approximate (Cloudflare names the product an
--   action touched, not the permission group it needed).
-- @remediation: Replace the token's write groups with their Read counterparts, or delete
--   the token if it reads nothing either.
SELECT p.kind, p.owner_account_id AS account_id, p.token_id AS id, p.token_name AS name,
       string_agg(DISTINCT p.permission_group_name, ', ') AS write_groups
  FROM cloudflare.audit.permissions p
 WHERE p.kind = 'account_token' AND p.status = 'active' AND p.effect = 'allow'
   AND p.access = 'write' AND p.applies IS NOT FALSE
   AND p.token_id NOT IN (
       SELECT token_id FROM cloudflare.audit.token_usage
        WHERE day >= current_date - 30 AND action_type IN ('create', 'update', 'delete'))
 GROUP BY p.kind, p.owner_account_id, p.token_id, p.token_name
 ORDER BY name, id;
