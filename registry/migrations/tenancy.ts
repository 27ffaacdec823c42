/**
 * Row-level security for a tenant-owned table: every row carries its tenant
 * (`tenant text NOT NULL`), and a transaction sees and writes only the rows
 * of the tenant it set (`beacon.tenant`, `TransactionOptions.tenant`), or all
 * of them with `ALL_TENANTS`; with none set, none. Forced, so the table's
 * owner is held to it too: a query that forgets its WHERE cannot return
 * another tenant's rows.
 */
export function tenantOwned(table: string): string {
  const mine = `tenant = current_setting('beacon.tenant', true) OR current_setting('beacon.tenant', true) = '*'`;
  return [`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY;`, `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY;`, `CREATE POLICY ${table}_tenant ON ${table} USING (${mine}) WITH CHECK (${mine});`].join(
    '\n',
  );
}
