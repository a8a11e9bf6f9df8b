import type Database from 'better-sqlite3';

/**
 * Changes a table's definition that ALTER TABLE cannot change (a CHECK constraint), by the
 * generalized procedure of https://www.sqlite.org/lang_altertable.html#otheralter: create the
 * new table under another name, copy every row (ids included), drop the old table, rename the
 * new one, recreate its indexes, triggers and the views. The caller runs it inside the
 * migration's transaction with foreign keys OFF (see Store.migrate): with them on, dropping
 * `results` would run its ON DELETE actions and delete every review and unlink every file row.
 *
 * The new definition is the table's CURRENT one rewritten by `rewrite`, not a fixed text, so a
 * column another migration added before this one runs is carried over as it is, with its rows.
 */
export function rebuildTable(
  db: Database.Database,
  table: string,
  rewrite: (createSql: string) => string,
): void {
  const schema = db
    .prepare<[string], { type: string; name: string; sql: string | null }>(
      `SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = ? OR type = 'view'`,
    )
    .all(table);
  const current = schema.find((o) => o.type === 'table' && o.name === table)?.sql;
  if (!current) throw new Error(`rebuild ${table}: no such table`);
  const rebuilt = `${table}_rebuilt`;
  const createSql = rewrite(current);
  if (createSql === current) throw new Error(`rebuild ${table}: the rewrite changed nothing`);
  const renamed = createSql.replace(/^CREATE TABLE\s+("?)\w+\1/i, `CREATE TABLE ${rebuilt}`);
  if (renamed === createSql) throw new Error(`rebuild ${table}: unexpected table definition`);
  // Automatic indexes (UNIQUE/PRIMARY KEY constraints) have no SQL: the new table makes its own.
  const dependents = schema.filter((o) => o.type !== 'table' && o.sql !== null);
  // A view that names the table would make the rename fail while the table is gone.
  for (const view of dependents.filter((o) => o.type === 'view')) db.exec(`DROP VIEW "${view.name}"`);
  const columns = db
    .prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${table}')`)
    .all()
    .map((c) => `"${c.name}"`)
    .join(', ');
  db.exec(renamed);
  db.exec(`INSERT INTO ${rebuilt} (${columns}) SELECT ${columns} FROM ${table}`);
  db.exec(`DROP TABLE ${table}`);
  db.exec(`ALTER TABLE ${rebuilt} RENAME TO ${table}`);
  for (const o of dependents) db.exec(o.sql as string);
}
