# signalr_bp -- PGXS build
EXTENSION = signalr_bp
# the one place the version is set: the control file's default_version
EXTVERSION := $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)
MODULE_big = signalr_bp
OBJS = \
	src/signalr_bp.o \
	src/guard.o \
	src/names.o \
	src/applications.o \
	src/streams.o \
	src/segments.o \
	src/direct_insert.o \
	src/publish.o \
	src/fetch.o \
	src/shmem.o \
	src/worker.o \
	src/lifecycle.o \
	src/stats.o \
	src/signalr.o \
	src/sends.o \
	src/audience.o

# The current version's install script is assembled from one file per concern
# (sql/install/, in name order); released scripts and upgrade scripts are kept
# as shipped.
INSTALL_SOURCES = $(sort $(wildcard sql/install/*.sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard $(EXTENSION)--*.sql))
# the library checks that the extension's SQL objects are of its version (src/guard.c)
PG_CPPFLAGS = -I$(srcdir)/src -DSBP_VERSION=\"$(EXTVERSION)\"
# -Wextra minus unused-parameter: fmgr and callback signatures have arguments we do not use
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter

# pg_regress and isolation tests run against a server started by scripts/test
# (preloaded); `make installcheck` uses PGHOST/PGPORT.
REGRESS = setup streams publish_fetch errors guc_range retention privileges signalr audience registry_plans reinstall
REGRESS_OPTS = --inputdir=.
ISOLATION = commit_order concurrent_streams retention_race registry_races stream_limit
ISOLATION_OPTS =

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object sees the shared structs: rebuild all when a header changes
$(OBJS): src/signalr_bp.h src/compat.h
# the version the library checks for comes from the control file
src/guard.o: $(EXTENSION).control

$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_SOURCES) $(EXTENSION).control
	{ echo '/* $@: assembled by make from the files in sql/install; edit those */'; \
	  echo; printf '%s\n' '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; \
	  for f in $(INSTALL_SOURCES); do echo; echo "-- $$f"; cat $$f; done; } > $@
