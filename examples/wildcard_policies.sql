-- Active API tokens allowed on wildcard resources
-- Active API tokens with an allow policy on wildcard resources (a resource key ending
-- in ".*", such as com.cloudflare.api.account.* or com.cloudflare.api.account.zone.*),
-- at any nesting level. Checks the first three policies of each token.
-- Run: cfql --demo -f examples/wildcard_policies.sql   (as a CI gate: cfql check --demo -f examples/wildcard_policies.sql)
WITH t AS (
  SELECT 'user_token' AS kind, CAST(NULL AS VARCHAR) AS account_id, id, name, status, policies FROM cloudflare.user.tokens
  UNION ALL
  SELECT 'account_token', account_id, id, name, status, policies FROM cloudflare.accounts.tokens
)
SELECT kind, account_id, id, name,
       json_get_json(policies, 0, 'resources') AS first_policy_resources
  FROM t
 WHERE status = 'active'
   AND (   (policies->0->>'effect' = 'allow' AND json_get_json(policies, 0, 'resources') LIKE '%.*":%')
        OR (policies->1->>'effect' = 'allow' AND json_get_json(policies, 1, 'resources') LIKE '%.*":%')
        OR (policies->2->>'effect' = 'allow' AND json_get_json(policies, 2, 'resources') LIKE '%.*":%'))
 ORDER BY kind, name;
