// Queries cfql serve through node-postgres (`pg`), which sends every parameter as untyped
// text, the way paginated web apps do. Prints one line per query: its label and the rows'
// count, or ERROR with the SQLSTATE and message. The test compares each count with the
// same question asked with literals, so nothing here is a hard-coded answer.
const { Client } = require('pg');

const ATTACK = "\\' OR true --";

async function main() {
  const client = new Client({ connectionString: process.argv[2] });
  await client.connect();
  const run = async (label, text, values) => {
    try {
      const r = await client.query(text, values);
      const cell = r.rows.length === 1 && 'n' in r.rows[0] ? ` N ${r.rows[0].n}` : '';
      const ids = r.rows.map((row) => row.id).filter(Boolean).join(',');
      console.log(`${label} ROWS ${r.rows.length}${cell}${ids ? ' IDS ' + ids : ''}`);
    } catch (e) {
      console.log(`${label} ERROR ${e.code} ${e.message.split('\n')[0]}`);
    }
  };
  const count = 'SELECT count(*) AS n FROM cloudflare.user.tokens WHERE ';
  await run('any_literal', count + "status IN ('active', 'disabled')");
  await run('any_param', count + 'status = ANY($1)', [['active', 'disabled']]);
  await run('all_literal', count + "status <> 'active'");
  await run('all_param', count + 'status <> ALL($1)', [['active']]);
  await run('disabled_literal', count + "status = 'disabled'");
  await run('any_cast', count + 'status = ANY($1::text[])', [['disabled', null]]);
  const first = (await client.query('SELECT min(id) AS id FROM cloudflare.user.tokens')).rows[0].id;
  await run('any_attack', count + 'id = ANY($1)', [[ATTACK, first, 'a"b,c', 'NULL', null]]);
  await run('any_ts', count + 'expires_on < ANY($1)', [[new Date()]]);
  await run('ts_param', count + 'expires_on < $1', [new Date()]);
  await run('any_not_array', count + 'status = ANY($1)', ['active']);
  await run('any_untyped', count + '$1 = ANY($2)', ['a', ['a']]);
  await run('page_literal', 'SELECT id FROM cloudflare.user.tokens ORDER BY id LIMIT 3 OFFSET 2');
  await run('page_param', 'SELECT id FROM cloudflare.user.tokens ORDER BY id LIMIT $1 OFFSET $2', [3, 2]);
  await run('page_bad', 'SELECT id FROM cloudflare.user.tokens ORDER BY id LIMIT $1', ['three']);
  await client.end();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
