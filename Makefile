# Building and installing libweightzip the way C and C++ projects expect:
#
#   make                          the release libraries and the tool (cargo build --release)
#   make install PREFIX=/usr/local [DESTDIR=...] [LIBDIR=lib]
#   make uninstall PREFIX=...
#
# Installs include/weightzip.h; lib/libweightzip.so.MAJOR.MINOR.PATCH with its SONAME
# libweightzip.so.MAJOR and the links distributions make (libweightzip.so.MAJOR, libweightzip.so);
# lib/libweightzip.a, whose only global symbols are the wz_ functions (the bundled zstd and the
# Rust runtime are made local, so it links into a program that has its own zstd);
# lib/pkgconfig/weightzip.pc; lib/cmake/weightzip/ (find_package(weightzip): the imported
# targets weightzip::weightzip and weightzip::weightzip_static); bin/weightzip, the tool.
# Nothing carries debug info (the release profile has none; build with `cargo build --profile
# profiling` for that).
#
# Why a Makefile and not cargo-c: cargo-c would be one more tool to build from crates.io on every
# machine, for what is here a few copies, links and two objcopy calls; make, ld, objcopy and ar
# are on every machine that builds C.

PREFIX  ?= /usr/local
LIBDIR  ?= lib
DESTDIR ?=
CARGO   ?= cargo
INSTALL ?= install

HERE    := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
TARGET  := $(if $(CARGO_TARGET_DIR),$(abspath $(CARGO_TARGET_DIR)),$(HERE)/target)
RELEASE := $(TARGET)/release
STAGE   := $(TARGET)/install-stage

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(HERE)/Cargo.toml | head -1)
MAJOR   := $(word 1,$(subst ., ,$(VERSION)))
MINOR   := $(word 2,$(subst ., ,$(VERSION)))
# What a static link of the Rust runtime needs from the system (rustc --print native-static-libs).
PRIVATE_LIBS := -lpthread -ldl -lm -lrt -lutil -lgcc_s -lc
CMAKE_PRIVATE_LIBS := pthread;dl;m;rt;util;gcc_s

DEST := $(DESTDIR)$(PREFIX)

.PHONY: all build install uninstall FORCE

all: build

# Always ask cargo; it does nothing when everything is up to date.
build: FORCE
	cd $(HERE) && $(CARGO) build --release -p weightzip -p weightzip-cli
	$(MAKE) -f $(HERE)/Makefile $(STAGE)/libweightzip.a

# The static library with one relocatable object whose only globals are wz_*: ld -r joins the
# archive's members, objcopy makes every other global local. The LLVM bitcode sections of the
# Rust objects go first: binutils' LTO plugin cannot read them, and nothing links against them.
$(STAGE)/libweightzip.a: $(RELEASE)/libweightzip.a
	mkdir -p $(STAGE)
	ld -r --whole-archive $< -o $(STAGE)/weightzip-all.o
	objcopy --remove-section=.llvmbc --remove-section=.llvmcmd --strip-debug \
	    $(STAGE)/weightzip-all.o $(STAGE)/weightzip-local.o
	objcopy -w --keep-global-symbol='wz_*' $(STAGE)/weightzip-local.o $(STAGE)/weightzip.o
	rm -f $@ $(STAGE)/weightzip-all.o $(STAGE)/weightzip-local.o
	ar rcs $@ $(STAGE)/weightzip.o

$(RELEASE)/libweightzip.a: FORCE
	@test -f $@ || { cd $(HERE) && $(CARGO) build --release -p weightzip; }

SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@MAJOR@|$(MAJOR)|g' -e 's|@MINOR@|$(MINOR)|g' -e 's|@PRIVATE_LIBS@|$(PRIVATE_LIBS)|g' \
	    -e 's|@CMAKE_PRIVATE_LIBS@|$(CMAKE_PRIVATE_LIBS)|g'

install: build
	$(INSTALL) -d $(DEST)/include $(DEST)/$(LIBDIR)/pkgconfig $(DEST)/$(LIBDIR)/cmake/weightzip $(DEST)/bin
	$(INSTALL) -m 644 $(HERE)/include/weightzip.h $(DEST)/include/weightzip.h
	$(INSTALL) -m 755 $(RELEASE)/libweightzip.so $(DEST)/$(LIBDIR)/libweightzip.so.$(VERSION)
	ln -sf libweightzip.so.$(VERSION) $(DEST)/$(LIBDIR)/libweightzip.so.$(MAJOR)
	ln -sf libweightzip.so.$(MAJOR) $(DEST)/$(LIBDIR)/libweightzip.so
	$(INSTALL) -m 644 $(STAGE)/libweightzip.a $(DEST)/$(LIBDIR)/libweightzip.a
	$(SUBST) $(HERE)/packaging/weightzip.pc.in > $(DEST)/$(LIBDIR)/pkgconfig/weightzip.pc
	$(SUBST) $(HERE)/packaging/weightzipConfig.cmake.in > $(DEST)/$(LIBDIR)/cmake/weightzip/weightzipConfig.cmake
	$(SUBST) $(HERE)/packaging/weightzipConfigVersion.cmake.in > $(DEST)/$(LIBDIR)/cmake/weightzip/weightzipConfigVersion.cmake
	$(INSTALL) -m 755 $(RELEASE)/weightzip $(DEST)/bin/weightzip

uninstall:
	rm -f $(DEST)/include/weightzip.h $(DEST)/$(LIBDIR)/libweightzip.so.$(VERSION) \
	    $(DEST)/$(LIBDIR)/libweightzip.so.$(MAJOR) $(DEST)/$(LIBDIR)/libweightzip.so \
	    $(DEST)/$(LIBDIR)/libweightzip.a $(DEST)/$(LIBDIR)/pkgconfig/weightzip.pc \
	    $(DEST)/$(LIBDIR)/cmake/weightzip/weightzipConfig.cmake \
	    $(DEST)/$(LIBDIR)/cmake/weightzip/weightzipConfigVersion.cmake $(DEST)/bin/weightzip
	-rmdir $(DEST)/$(LIBDIR)/cmake/weightzip

FORCE:
