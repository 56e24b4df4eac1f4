-- Rolls every active user token that expires within {{ days }} days, in one statement,
-- and prints the new secrets (also appended to --secrets-file when given).
-- Run: cfql --demo --var days=7 --secrets-file rotated.jsonl -f examples/rotate_expiring.sql
-- Preview first: add --dry-run.
EXEC cloudflare.user.tokens.update_value
  @token_id = (SELECT id FROM cloudflare.user.tokens
                WHERE status = 'active'
                  AND expires_on > now()
                  AND expires_on < now() + INTERVAL '{{ days }} days');
