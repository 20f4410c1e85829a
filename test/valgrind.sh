#!/usr/bin/env bash
# The regression suite (and the isolation specs) with every backend under
# valgrind's memcheck, against a PostgreSQL built for it: from Debian's
# source of the same major version, with -DUSE_VALGRIND (memory contexts
# tell valgrind what is allocated, freed and defined) and assertions
# enabled, with PostgreSQL's own suppression file.  That server is built
# once into HL_CACHE_DIR (default /var/tmp/headlessly-cache; about 10
# minutes on 2 busy cores) and reused.
#
# Usage: bash test/valgrind.sh [--discard-caches] [regress|isolation|TEST]...
#   default: regress isolation, under valgrind
#   --discard-caches: the same server without valgrind, with
#       debug_discard_caches = 1 (every cache entry is dropped at every
#       chance, as a concurrent invalidation could drop it): finds cached
#       OIDs, plans and memory used after their invalidation
# Prints every error valgrind reports, those through headlessly_events
# first, and every failed assertion and crashed backend; exits non-zero if
# there is any or a test fails.  The logs go to test/results-valgrind/.
source "$(dirname "$0")/lib.sh"

CACHE_DIR=${HL_CACHE_DIR:-/var/tmp/headlessly-cache}
OUT=$TOP/test/results-valgrind
DISCARD_CACHES=
if [ "${1:-}" = --discard-caches ]; then DISCARD_CACHES=1; shift; fi
[ $# -gt 0 ] || set -- regress isolation

ensure_packages
# the server's build: release tarballs of 17 and later come without the
# generated parser sources
install_packages valgrind bison flex bzip2

# --- a PostgreSQL of PG_MAJOR built for valgrind -------------------------
PREFIX=$CACHE_DIR/postgresql-$PG_MAJOR-valgrind
mkdir -p "$CACHE_DIR"

# Debian's source of postgresql-PG_MAJOR, fetched with apt-get through the
# system's own mirrors (as deb-src) in a private apt state, so that the
# system's configuration is left alone.
fetch_source() {
    local apt=$CACHE_DIR/apt
    rm -rf "$apt"
    mkdir -p "$apt/lists/partial" "$apt/parts" "$apt/cache/archives/partial"
    if [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list >"$apt/parts/src.list"
    fi
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && sed 's/^Types: deb$/Types: deb-src/' "$f" >"$apt/parts/$(basename "$f")"
    done
    for f in /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && sed -n 's/^deb \(.*\)$/deb-src \1/p' "$f" >"$apt/parts/src-$(basename "$f")"
    done
    local opts=(-q -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$apt/parts"
                -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache"
                -o Debug::NoLocking=1)
    apt-get "${opts[@]}" update >"$apt/update.log" 2>&1 ||
        { cat "$apt/update.log" >&2; die "apt-get update of the source lists failed"; }
    # the newest version first; a security update's source may be missing
    # from the mirror while its previous version is there
    local v
    for v in $(apt-cache "${opts[@]}" showsrc "postgresql-$PG_MAJOR" |
               sed -n 's/^Version: //p' | sort -urV); do
        (cd "$CACHE_DIR" && apt-get "${opts[@]}" source --download-only \
            "postgresql-$PG_MAJOR=$v" >"$apt/source.log" 2>&1) && return 0
    done
    cat "$apt/source.log" >&2
    die "could not download the source of postgresql-$PG_MAJOR"
}

build_server() {
    [ -x "$PREFIX/bin/postgres" ] && return 0
    say "building PostgreSQL $PG_MAJOR for valgrind into $PREFIX (once)"
    ls "$CACHE_DIR"/postgresql-"$PG_MAJOR"_*.orig.tar.* >/dev/null 2>&1 || fetch_source
    local tarball src
    tarball=$(ls "$CACHE_DIR"/postgresql-"$PG_MAJOR"_*.orig.tar.* | sort -V | tail -n 1)
    src=$CACHE_DIR/build-$PG_MAJOR
    rm -rf "$src" "$PREFIX"
    mkdir -p "$src"
    tar -C "$src" --strip-components=1 -xf "$tarball"
    (cd "$src" &&
        ./configure --prefix="$PREFIX" --enable-debug --enable-cassert \
            --without-readline --without-zlib --without-icu --without-llvm \
            CFLAGS="-O1 -g -fno-omit-frame-pointer" CPPFLAGS="-DUSE_VALGRIND" \
            >"$src/configure.log" 2>&1 &&
        make -s -j"$(nproc)" >"$src/build.log" 2>&1 &&
        make -s install >"$src/install.log" 2>&1) ||
        { tail -n 30 "$src"/*.log >&2; die "building PostgreSQL $PG_MAJOR failed (logs in $src)"; }
    cp "$src/src/tools/valgrind.supp" "$PREFIX/valgrind.supp"
    rm -rf "$src"
}

# amcheck, which the regression tests use, against that server through PGXS
build_contrib() {
    [ -f "$PREFIX/share/extension/amcheck.control" ] && return 0
    say "building amcheck for the valgrind server (once)"
    ls "$CACHE_DIR"/postgresql-"$PG_MAJOR"_*.orig.tar.* >/dev/null 2>&1 || fetch_source
    local tarball src
    tarball=$(ls "$CACHE_DIR"/postgresql-"$PG_MAJOR"_*.orig.tar.* | sort -V | tail -n 1)
    src=$CACHE_DIR/contrib-$PG_MAJOR
    rm -rf "$src"
    mkdir -p "$src"
    tar -C "$src" --strip-components=1 -xf "$tarball" --wildcards '*/contrib/amcheck/*'
    make -C "$src/contrib/amcheck" -s USE_PGXS=1 PG_CONFIG="$PREFIX/bin/pg_config" install \
        >"$src/install.log" 2>&1 ||
        { tail -n 30 "$src/install.log" >&2; die "building amcheck failed (log in $src)"; }
    rm -rf "$src"
}

build_server
build_contrib
PG_BIN=$PREFIX/bin
PG_CONFIG=$PG_BIN/pg_config
export PG_CONFIG

# Built in a copy of the tree: the checkout's objects are for the server
# run-tests.sh uses, and may be in use by it.  The cache belongs to whoever
# built it, so no sudo.
make_workdir
mkdir "$WORKDIR/tree" "$WORKDIR/valgrind"
tar -C "$TOP" --exclude=.git --exclude=./results --exclude='./test/results*' \
    --exclude=./tmp_check --exclude=./output_iso --exclude='*.o' --exclude='*.so' \
    --exclude='*.bc' --exclude=./.pg_config.stamp -cf - . | tar -C "$WORKDIR/tree" -xf -
say "building and installing headlessly_events into $("$PG_CONFIG" --pkglibdir)"
make -C "$WORKDIR/tree" -s PG_CONFIG="$PG_CONFIG" WERROR=1
make -C "$WORKDIR/tree" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
if [ "$(id -u)" = 0 ]; then chown -R "$CLUSTER_USER" "$WORKDIR/tree" "$WORKDIR/valgrind"; fi

# --- the cluster, every process under memcheck ----------------------------
PGPORT=$(( 20000 + $$ % 20000 )); PGHOST=$WORKDIR; PGUSER=postgres
export PGPORT PGHOST PGUSER
as_cluster_user initdb -D "$WORKDIR/data" -U postgres -A trust --no-sync \
    --encoding=UTF8 --locale="$HL_TEST_LOCALE" >"$WORKDIR/initdb.log" 2>&1 ||
    { cat "$WORKDIR/initdb.log" >&2; die "initdb failed"; }
cat >>"$WORKDIR/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$WORKDIR'
port = $PGPORT
max_connections = 20
# under valgrind everything is 20-50 times slower
statement_timeout = 0
deadlock_timeout = 10s
EOF
if [ -n "$DISCARD_CACHES" ]; then
    # in the configuration: roles the tests connect as may not set it
    echo "debug_discard_caches = 1" >>"$WORKDIR/data/postgresql.conf"
    say "starting the server with debug_discard_caches = 1"
    as_cluster_user "$PG_BIN/postgres" -D "$WORKDIR/data" >"$WORKDIR/server.log" 2>&1 &
else
    say "starting the server under valgrind"
    as_cluster_user valgrind --quiet --trace-children=yes --track-origins=yes \
        --num-callers=40 --leak-check=no --gen-suppressions=all \
        --suppressions="$PREFIX/valgrind.supp" --error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END \
        --log-file="$WORKDIR/valgrind/%p.log" \
        "$PG_BIN/postgres" -D "$WORKDIR/data" >"$WORKDIR/server.log" 2>&1 &
fi
# A backend takes seconds to start under valgrind (longer than pg_isready's
# default wait); after a crash, recovery takes minutes.
wait_ready() {
    local _
    for _ in $(seq 1 150); do
        as_cluster_user "$PG_BIN/pg_isready" -q -t 60 -h "$PGHOST" -p "$PGPORT" && return 0
        sleep 2
    done
    return 1
}
wait_ready || { tail -n 20 "$WORKDIR/server.log" >&2; die "the server did not start"; }

# --- the tests -------------------------------------------------------------
regress=; isolation=
for arg in "$@"; do
    case "$arg" in
        regress) regress="$regress $(sed -n 's/^REGRESS = //p' "$TOP/Makefile")" ;;
        isolation) isolation="$isolation $(sed -n 's/^ISOLATION = //p' "$TOP/Makefile")" ;;
        *) if [ -f "$TOP/sql/$arg.sql" ]; then regress="$regress $arg"
           elif [ -f "$TOP/test/isolation/specs/$arg.spec" ]; then isolation="$isolation $arg"
           else die "no regression test or isolation spec named '$arg'"; fi ;;
    esac
done
status=0
run() {
    say "$1"
    wait_ready || { echo "the server is not accepting connections"; status=1; return; }
    as_cluster_user env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" \
        make -C "$WORKDIR/tree" -s PG_CONFIG="$PG_CONFIG" installcheck "${@:2}" \
        >"$WORKDIR/$1.out" 2>&1 || status=1
    cat "$WORKDIR/$1.out"
}
set +e
[ -z "$regress" ] || run regress REGRESS="$regress" ISOLATION= TAP_TESTS=
[ -z "$isolation" ] || run isolation REGRESS= ISOLATION="$isolation" TAP_TESTS=
set -e
as_cluster_user "$PG_BIN/pg_ctl" -D "$WORKDIR/data" -m fast -w -t 120 stop >/dev/null 2>&1 ||
    as_cluster_user "$PG_BIN/pg_ctl" -D "$WORKDIR/data" -m immediate -w stop >/dev/null 2>&1 || true

# --- what valgrind found -----------------------------------------------------
rm -rf "$OUT"
mkdir -p "$OUT"
cp -R "$WORKDIR/valgrind" "$WORKDIR"/*.out "$WORKDIR/server.log" "$OUT/" 2>/dev/null || true
for f in regression.diffs output_iso/regression.diffs; do
    [ -s "$WORKDIR/tree/$f" ] && { cp "$WORKDIR/tree/$f" "$OUT/${f//\//_}"; status=1; }
done
# each error once (the same one from many backends is one finding)
[ -n "$DISCARD_CACHES" ] || perl -e '
    my (%seen, @ours, @core, $n);
    for my $file (@ARGV) {
        open my $fh, "<", $file or next;
        local $/;
        my $text = <$fh>;
        while ($text =~ /VALGRINDERROR-BEGIN\n(.*?)VALGRINDERROR-END/sg) {
            my $e = $1;
            $n++;
            (my $key = $e) =~ s/^==\d+==\s?//mg;
            $key =~ s/0x[0-9A-F]+: //g;
            $key =~ s/\{\n.*\}\n//s;      # the generated suppression
            next if $seen{$key}++;
            if ($e =~ /headlessly_events/) { push @ours, $key } else { push @core, $key }
        }
    }
    printf "\n==> valgrind: %d errors, %d distinct, %d through headlessly_events\n",
        $n // 0, scalar(@ours) + scalar(@core), scalar @ours;
    print "\n--- through headlessly_events ---\n$_" for @ours;
    print "\n--- elsewhere ---\n$_" for @core;
    exit((@ours || @core) ? 1 : 0);
' "$OUT"/valgrind/*.log || status=1
# failed assertions and backends that crashed, with the server's backtrace
if grep -q 'TRAP:\|terminated by signal' "$OUT/server.log"; then
    say "assertion failures and crashes (server.log)"
    grep -A 60 'TRAP:' "$OUT/server.log" | grep -v '^--$' | sed -n '1,/^20..-..-.. /p' || true
    grep 'terminated by signal' -A 1 "$OUT/server.log" || true
    status=1
fi
echo "logs in $OUT"
exit $status
