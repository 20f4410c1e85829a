# headlessly_events: PGXS build

EXTENSION = headlessly_events
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = headlessly_events
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
HEADERS = src/headlessly.h

DATA = src/$(EXTENSION)--$(EXTVERSION).sql $(wildcard src/$(EXTENSION)--*--*.sql)

REGRESS = append entity errors batch idempotency immutability make_append_only settings hooks capture time_travel entities_as_of rollback events_list time_travel_admin
REGRESS_OPTS = --load-extension=$(EXTENSION)

ISOLATION = stream_versions idempotency_race expected_version_race hook_registration time_travel_consistency
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=$(EXTENSION)

TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Warnings are errors in CI (make WERROR=1).
ifdef WERROR
override CFLAGS += -Werror
endif

# Every object depends on the shared header (PGXS tracks no header dependencies).
$(OBJS): src/headlessly.h
