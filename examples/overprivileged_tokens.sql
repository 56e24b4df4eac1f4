-- Active tokens that can write to every zone or every account
-- Active user and account tokens with an allow policy granting a write permission on a
-- wildcard resource (every account, every zone, every user resource), where the
-- permission's scope applies to that resource. One row per token, permission and
-- resource, from cloudflare.audit.permissions (which flattens every policy, nested maps
-- included). Narrow them to the accounts or zones they need.
-- Run: cfql --demo -f examples/overprivileged_tokens.sql   (as a CI gate: cfql check --demo -f examples/overprivileged_tokens.sql)
SELECT kind, owner_account_id, token_id, token_name, permission_group_name, resource
  FROM cloudflare.audit.permissions
 WHERE status = 'active'
   AND effect = 'allow'
   AND access = 'write'
   AND resource_breadth = 'all'
   AND applies IS NOT FALSE
 ORDER BY kind, token_name, permission_group_name, resource;
