# signalr_bp -- PGXS build
EXTENSION = signalr_bp
MODULE_big = signalr_bp
OBJS = \
	src/signalr_bp.o \
	src/names.o \
	src/streams.o \
	src/segments.o \
	src/publish.o \
	src/fetch.o \
	src/shmem.o \
	src/worker.o \
	src/stats.o \
	src/signalr.o \
	src/audience.o

DATA = $(wildcard signalr_bp--*.sql)
PG_CPPFLAGS = -I$(srcdir)/src
# -Wextra minus unused-parameter: fmgr and callback signatures have arguments we do not use
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter

# pg_regress and isolation tests run against a server started by scripts/test
# (preloaded); `make installcheck` uses PGHOST/PGPORT.
REGRESS = setup streams publish_fetch errors retention privileges signalr audience reinstall
REGRESS_OPTS = --inputdir=.
ISOLATION = commit_order concurrent_streams retention_race registry_races
ISOLATION_OPTS =

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object sees the shared structs: rebuild all when a header changes
$(OBJS): src/signalr_bp.h src/compat.h
