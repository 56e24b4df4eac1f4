-- Account tokens granted write access that made no write in 30 days
-- Active account-owned tokens with an allow policy granting a write permission group,
-- whose account's Audit Logs v2 record no create, update or delete made with the token
-- in the last 30 days (Cloudflare keeps 18 months). Such a grant can likely become its
-- Read twin. The match is by token, not by permission group: which group a logged
-- action needed is approximate (Cloudflare maps only some operations to a group), so a
-- token that writes with one group keeps all its write groups off this list.
-- User tokens are left out: their calls are logged in each account they act on, and a
-- user token that wrote nowhere cfql can read cannot be told from one that wrote
-- elsewhere.
-- Run: cfql --demo -f examples/unused_write_permissions.sql   (as a CI gate: cfql check --demo -f examples/unused_write_permissions.sql)
SELECT p.owner_account_id, p.token_id, p.token_name,
       string_agg(DISTINCT p.permission_group_name, ', ') AS write_groups
  FROM cloudflare.audit.permissions p
 WHERE p.kind = 'account_token'
   AND p.status = 'active'
   AND p.effect = 'allow'
   AND p.access = 'write'
   AND p.applies IS NOT FALSE
   AND p.token_id NOT IN (
       SELECT token_id FROM cloudflare.audit.token_usage
        WHERE day >= current_date - 30
          AND action_type IN ('create', 'update', 'delete'))
 GROUP BY p.owner_account_id, p.token_id, p.token_name
 ORDER BY p.token_name, p.token_id;
