# headlessly_events: PGXS build

EXTENSION = headlessly_events
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = headlessly_events
# one folder per capability; headers name what each may use
SRC_DIRS = src/common src/log src/state src/hooks src/tamper src/delivery src/worker src/tenancy
OBJS = src/headlessly.o $(patsubst %.c,%.o,$(sort $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c))))
HL_HEADERS = $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.h))
PG_CPPFLAGS = -I$(srcdir)/src

# The install script of the current version is built from each capability's
# SQL, in dependency order.  Released scripts (the full 0.1 script and every
# upgrade script) are kept as they were shipped.
SQL_PARTS = src/log/log.sql src/log/guard.sql src/hooks/hooks.sql \
	src/hooks/capture.sql src/state/state.sql src/tamper/tamper.sql \
	src/delivery/delivery.sql src/delivery/webhook.sql src/worker/worker.sql src/tenancy/tenancy.sql
SQL_SCRIPT = src/$(EXTENSION)--$(EXTVERSION).sql
DATA_built = $(SQL_SCRIPT)
DATA = src/$(EXTENSION)--0.1.sql $(wildcard src/$(EXTENSION)--*--*.sql)

REGRESS = append entity errors bad_names batch idempotency immutability make_append_only ddl_guard settings hooks hooks_safety capture capture_nouns capture_search_path time_travel time_travel_heads entities_as_of rollback events_list time_travel_admin trust_boundary key_locks hostile_review delivery append_index_cache tamper_api tamper_scan tamper_parallel tenancy hostile_delivery hostile_tenant catalog trigger_protocol audit upgrade
REGRESS_OPTS = --load-extension=$(EXTENSION)

ISOLATION = stream_versions stream_heads idempotency_race expected_version_race hook_registration hook_cache_reload hook_cancel hook_after_trigger hook_internal_ddl time_travel_consistency guard_internal_ddl capture_race seq_order stream_head_tids delivery_late_commit delivery_groups delivery_ack_nack tenant_grant_changes delivery_version_order verify_parallel_cancel tenant_grant_locks hook_round_lock_order delivery_own_events hook_handler_rename stream_heads_alter
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=$(EXTENSION)

TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
# SHA-256 and Ed25519 of tamper evidence (src/tamper/) come from OpenSSL's
# libcrypto, whether or not the server itself was built with OpenSSL
SHLIB_LINK += -lcrypto
# webhooks (src/delivery/webhook.c)
SHLIB_LINK += -lcurl

$(SQL_SCRIPT): $(SQL_PARTS) $(EXTENSION).control
	{ printf '%s\n' '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; \
	  for part in $(SQL_PARTS); do echo; cat $$part; done; } > $@

# Warnings are errors in CI (make WERROR=1).
ifdef WERROR
override CFLAGS += -Werror
endif

# PGXS tracks no header dependencies: every object depends on every header.
$(OBJS): $(HL_HEADERS)
