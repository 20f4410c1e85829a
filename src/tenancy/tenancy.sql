-- Tenant isolation -------------------------------------------------------------

-- Which tenants each tenant role may use.  A role with any row here is a
-- tenant role; revoking keeps its row with rights 'none', so it stays one
-- and fails closed.  Only the owner changes it (grant_tenant() and
-- revoke_tenant() check the caller and write as the owner).
CREATE TABLE headlessly.tenant_grants (
    role        regrole NOT NULL,
    tenant      text COLLATE "C" NOT NULL,
    rights      text NOT NULL CHECK (rights IN ('none', 'read', 'write', 'admin')),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    granted_by  name NOT NULL DEFAULT current_user,
    CONSTRAINT tenant_grants_pkey PRIMARY KEY (role, tenant)
);

COMMENT ON TABLE headlessly.tenant_grants IS
    'Tenant roles and their tenants; change it with headlessly.grant_tenant() and headlessly.revoke_tenant(). rights ''none'': revoked (the role stays a tenant role and may not use the tenant).';

-- Rows are kept by role OID, so a new role of a dropped role's name
-- inherits nothing.  A dropped role's rows stay (DROP ROLE reaches no
-- database's tables) but are not dumped: their OID, dumped as a number,
-- would name whichever role has it where the dump is restored.
SELECT pg_catalog.pg_extension_config_dump('headlessly.tenant_grants',
    'WHERE role::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (SELECT r.oid FROM pg_catalog.pg_roles r)');

-- Every change reaches the per-backend caches of the grants (tenancy.c).
CREATE FUNCTION headlessly.tenant_grants_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'headlessly_tenant_grants_changed'
LANGUAGE C;

CREATE TRIGGER tenant_grants_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON headlessly.tenant_grants
    FOR EACH STATEMENT EXECUTE FUNCTION headlessly.tenant_grants_changed();
ALTER TABLE headlessly.tenant_grants ENABLE ALWAYS TRIGGER tenant_grants_changed;

REVOKE ALL ON FUNCTION headlessly.tenant_grants_changed() FROM PUBLIC;

CREATE FUNCTION headlessly.grant_tenant(role regrole, tenant text, rights text DEFAULT 'write')
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_grant_tenant'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.grant_tenant(regrole, text, text) IS
    'Bind a role to a tenant with rights ''read'', ''write'' or ''admin''; the role then reads and writes only its tenants. The first binding turns row security on for the extension''s tables.';

CREATE FUNCTION headlessly.revoke_tenant(role regrole, tenant text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_revoke_tenant'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION headlessly.revoke_tenant(regrole, text) IS
    'Take a tenant from a tenant role; false if it held no rights on it. The role stays a tenant role: without tenants it sees nothing.';

-- The row security predicates: the current role's grants (cached per
-- backend), never the setting headlessly.tenant.  Every role may call them:
-- row security runs them as the querying role, and they only tell it about
-- its own rights.
CREATE FUNCTION headlessly.tenant_readable(tenant text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_tenant_readable'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION headlessly.tenant_readable(text) IS
    'Whether the current role may read the tenant''s rows: true for roles not bound to tenants.';

CREATE FUNCTION headlessly.tenant_writable(tenant text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'headlessly_tenant_writable'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION headlessly.tenant_writable(text) IS
    'Whether the current role may write the tenant''s rows: true for roles not bound to tenants.';

CREATE FUNCTION headlessly.tenant_isolation_enforce()
RETURNS void
AS 'MODULE_PATHNAME', 'headlessly_tenant_isolation_enforce'
LANGUAGE C VOLATILE;

REVOKE ALL ON FUNCTION headlessly.tenant_isolation_enforce() FROM PUBLIC;

-- One policy per table with tenant rows; row security itself is turned on
-- (ENABLE, FORCE) by the first grant_tenant(), for every table with a
-- policy of this name.  A new table with a tenant column needs one line:
--   CREATE POLICY tenant_isolation ON headlessly.<table>
--       USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_writable(tenant));
CREATE POLICY tenant_isolation ON headlessly.events
    USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_writable(tenant));
CREATE POLICY tenant_isolation ON headlessly.streams
    USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_writable(tenant));
CREATE POLICY tenant_isolation ON headlessly.snapshots
    USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_writable(tenant));
CREATE POLICY tenant_isolation ON headlessly.checkpoints
    USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_writable(tenant));
-- a delivery belongs to its event's tenant; a subscription to its tenant,
-- and one for every tenant (tenant NULL) to its owner
CREATE POLICY tenant_isolation ON headlessly.deliveries
    USING (headlessly.tenant_readable(tenant)) WITH CHECK (headlessly.tenant_readable(tenant));
CREATE POLICY tenant_isolation ON headlessly.subscriptions
    USING (coalesce(headlessly.tenant_readable(tenant), false)
           OR pg_catalog.pg_has_role(owner, 'MEMBER'))
    WITH CHECK (coalesce(headlessly.tenant_readable(tenant), false)
                OR pg_catalog.pg_has_role(owner, 'MEMBER'));
-- a hook failure belongs to its event's tenant: visible with the event
CREATE POLICY tenant_isolation ON headlessly.hook_failures
    USING (EXISTS (SELECT FROM headlessly.events e
                    WHERE e.id OPERATOR(pg_catalog.=) hook_failures.event_id))
    WITH CHECK (EXISTS (SELECT FROM headlessly.events e
                         WHERE e.id OPERATOR(pg_catalog.=) hook_failures.event_id
                           AND headlessly.tenant_writable(e.tenant)));

-- The views over the heads read them with their owner's rights (a role may
-- be granted entities alone), so row security on streams, which checks the
-- owner's rights, does not filter them: they filter with the same
-- predicate.  security_barrier: a caller's own conditions (leaky functions)
-- see only rows that passed it.
CREATE OR REPLACE VIEW headlessly.heads WITH (security_barrier = true) AS
    SELECT s.tenant, s.target, s.version, s.last_recorded_at, s.noun, s.state,
           s.created_at, s.updated_at
      FROM headlessly.streams s
     WHERE (s.tenant, s.target) NOT IN (SELECT p.tenant, p.target FROM headlessly.pending_heads() p)
       AND headlessly.tenant_readable(s.tenant)
    UNION ALL
    SELECT p.tenant, p.target, p.version, p.last_recorded_at, p.noun, p.state,
           p.created_at, p.updated_at
      FROM headlessly.pending_heads() p
     WHERE headlessly.tenant_readable(p.tenant);

-- The grants of roles that no longer exist: listed, and removed.
CREATE FUNCTION headlessly.forget_dropped_roles()
RETURNS TABLE (role oid, tenant text, rights text)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM headlessly.tenant_grants g
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles r
                        WHERE r.oid OPERATOR(pg_catalog.=) g.role::pg_catalog.oid)
    RETURNING g.role::pg_catalog.oid, g.tenant, g.rights
$$;

COMMENT ON FUNCTION headlessly.forget_dropped_roles() IS
    'Remove the tenant grants of roles that have been dropped (DROP ROLE leaves them behind, unused); returns them. Run it in every database of the extension after dropping tenant roles.';

REVOKE ALL ON FUNCTION headlessly.forget_dropped_roles() FROM PUBLIC;
