#!/usr/bin/perl
# make install into a temporary prefix, then build and run a tiny outside
# program with nothing but `pkg-config --cflags --libs pstm`.
use strict;
use warnings;
use Test::More;
use lib 'tests';
use PstmTest;

my $b = build_dir();
my $dir = temp_dir('install');
my $prefix = "$dir/prefix";

is(system("make -s install B=$b PREFIX=$prefix >$dir/install.log 2>&1"), 0,
   'make install PREFIX=...') or diag(`cat $dir/install.log`);
ok(-f "$prefix/include/pstm.h", 'header installed');
ok(-l "$prefix/lib/libpstm.so.0", 'soname link installed');
ok(-f "$prefix/lib/pkgconfig/pstm.pc", 'pkg-config file installed');
ok(-f "$prefix/share/man/man1/pstm.1" && -f "$prefix/share/man/man3/pstm.3",
   'man pages installed');
ok(-x "$prefix/bin/pstm", 'CLI installed');
ok(-x "$prefix/bin/pstm-crashtest" && -f "$prefix/share/man/man1/pstm-crashtest.1",
   'pstm-crashtest and its man page installed');
ok(-f "$prefix/include/pstm_ds.h" && -f "$prefix/include/pstm_crashtest.h",
   'every public header installed');

open(my $fh, '>', "$dir/prog.c") or die;
print $fh <<'C';
#include <pstm.h>
#include <stdio.h>
static int bump(pstm_tx *tx, void *a)
{
	pstm_off r = pstm_root(tx, 8);
	pstm_store64(tx, r, pstm_load64(tx, r) + 41);
	*(uint64_t *)a = pstm_load64(tx, r);
	return 0;
}
int main(int argc, char **argv)
{
	pstm_region *r;
	uint64_t v = 0;
	int rc = pstm_create(argv[argc - 1], NULL, &r);
	if (rc) { puts(pstm_strerror(rc)); return 1; }
	rc = pstm_atomic(r, bump, &v);
	pstm_close(r);
	pstm_unlink(argv[argc - 1]);
	printf("%d %llu\n", rc, (unsigned long long)v);
	return rc;
}
C
close $fh;

$ENV{PKG_CONFIG_PATH} = "$prefix/lib/pkgconfig";
my $flags = `pkg-config --cflags --libs pstm`;
is($?, 0, 'pkg-config knows pstm');
chomp $flags;
is(system("cc -Wall -Werror $dir/prog.c $flags -o $dir/prog 2>$dir/cc.log"), 0,
   'outside program builds with pkg-config flags') or diag(`cat $dir/cc.log`);
my ($rc, $out) = run_program({LD_LIBRARY_PATH => "$prefix/lib"}, "$dir/prog",
			     'shm:' . shm_name('install'));
is($out, "0 41\n", 'outside program runs against the shared library');
my $needed = `readelf -d $dir/prog`;
like($needed, qr/libpstm\.so\.0/, 'linked against the soname');
my $syms = `nm -D --defined-only $prefix/lib/libpstm.so`;
my @bad = grep { !/ pstm_/ } grep { / T / } split /\n/, $syms;
is(scalar(@bad), 0, 'only pstm_* functions are exported') or diag(join "\n", @bad);
done_testing();
