-- Settings.
\set SHOW_CONTEXT never
-- settings exist once the library is loaded, which the first call of any of
-- its functions does; LOAD does it explicitly
LOAD 'headlessly_events';

SHOW headlessly.max_hook_depth;
SHOW headlessly.max_event_bytes;
SELECT current_setting('headlessly.tenant', true) IS NULL OR current_setting('headlessly.tenant', true) = '' AS tenant_unset;

-- the tenant: argument, then setting, then 'default'
SELECT tenant FROM headlessly.events_append('settings_probe');
SET headlessly.tenant = 'acme';
SELECT tenant FROM headlessly.events_append('settings_probe');
SELECT tenant FROM headlessly.events_append('settings_probe', tenant => 'globex');
SELECT tenant FROM headlessly.events_append_batch('[{"type": "settings_probe"}, {"type": "settings_probe", "tenant": "initech"}]');
SET headlessly.tenant = '';
\echo :LAST_ERROR_SQLSTATE
SHOW headlessly.tenant;
RESET headlessly.tenant;
SELECT tenant FROM headlessly.events_append('settings_probe');

-- limits are for superusers to change
CREATE ROLE regress_hl_user;
SET ROLE regress_hl_user;
SET headlessly.max_event_bytes = '10MB';
\echo :LAST_ERROR_SQLSTATE
SET headlessly.max_hook_depth = 100;
\echo :LAST_ERROR_SQLSTATE
SET headlessly.tenant = 'whatever';
RESET ROLE;
DROP ROLE regress_hl_user;

-- the prefix is reserved: a typo is an error, not a silent placeholder
SET headlessly.tennant = 'acme';
\echo :LAST_ERROR_SQLSTATE
SET headlessly.max_hook_depth = 0;
\echo :LAST_ERROR_SQLSTATE
