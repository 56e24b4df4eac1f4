-- Active tokens with R2 write access beyond single buckets
-- Active user and account tokens allowed to write R2 storage on more than one bucket:
-- through an account-wide R2 permission (an account, or every account) or a wildcard
-- bucket resource. A token that writes one bucket names it as
-- com.cloudflare.edge.r2.bucket.<account>_<jurisdiction>_<bucket>.
-- Run: cfql --demo -f examples/unscoped_r2_tokens.sql   (as a CI gate: cfql check --demo -f examples/unscoped_r2_tokens.sql)
SELECT kind, owner_account_id, token_id, token_name, permission_group_name, resource,
       resource_breadth, resource_name
  FROM cloudflare.audit.permissions
 WHERE status = 'active'
   AND effect = 'allow'
   AND access = 'write'
   AND permission_group_name LIKE '%R2%'
   AND NOT (resource_type = 'r2_bucket' AND resource_breadth = 'one')
 ORDER BY kind, token_name, resource;
