#!/usr/bin/perl
# make install into a temporary prefix, then build and run a tiny outside
# program with nothing but `pkg-config --cflags --libs pstm`, and
# tests/hooks_ignored.c, shared and static, to show that the installed
# library ignores the test-only PSTM_TEST_* switches.
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

# ------------------------------------------------ one version source
# pstm.h's PSTM_VERSION_* reach pstm.pc, pstm_version() and pstm --version
my $release = `pkg-config --modversion pstm`;
chomp $release;
like($release, qr/\A\d+\.\d+\.\d+\z/, "pstm.pc: Version $release");
open($fh, '>', "$dir/version.c") or die;
print $fh <<'C';
#include <pstm.h>
#include <stdio.h>
int main(void)
{
	printf("%s %d.%d.%d\n", pstm_version(), PSTM_VERSION_MAJOR,
	       PSTM_VERSION_MINOR, PSTM_VERSION_PATCH);
	return 0;
}
C
close $fh;
is(system("cc -Wall -Werror $dir/version.c $flags -o $dir/version 2>$dir/cc.log"), 0,
   'a program printing pstm_version() builds') or diag(`cat $dir/cc.log`);
($rc, $out) = run_program({LD_LIBRARY_PATH => "$prefix/lib"}, "$dir/version");
is($out, "$release $release\n", 'pstm_version() and the PSTM_VERSION_* macros: the same');
($rc, $out) = run_program("$prefix/bin/pstm", '--version');
is($out, "pstm $release\n", 'the installed pstm --version: the same');

# ------------------------------------- the test hooks are not shipped
# The library's test-only switches, PSTM_TEST_BREAK_VALIDATION=1 (reads
# unvalidated) and PSTM_TEST_POWERFAIL=IMAGE:SEED:ONE_IN (write a crash
# image to IMAGE and _exit), must do nothing in what make install ships.
# tests/hooks_ignored.c loses updates if reads go unvalidated, and stops
# at its first flush, leaving the image, if power failures are simulated;
# it is run on a shm: region and a file region, linked both ways.
my $hooks = temp_dir('hooks', tmpfs => 1);
my $img = "$hooks/x";
my %hooks_on = (PSTM_TEST_BREAK_VALIDATION => '1', PSTM_TEST_POWERFAIL => "$img:1:1");
my $static = `pkg-config --static --cflags --libs pstm`;
chomp $static;
$static =~ s/(-lpstm)\b/-Wl,-Bstatic $1 -Wl,-Bdynamic/;
my %link = (shared => $flags, static => $static);

# every figure exact on both regions: counter, accounts, ids in the log
sub exact_on {
	my ($out, $uri, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	like($out, qr/^\Q$uri\E: counter (\d+) of \1, accounts (\d+) of \2 \(0 wrong\), log (\d+) of \3 ids$/m,
	     $name);
}

for my $kind (qw(shared static)) {
	my $prog = "$dir/hooks_$kind";
	is(system("cc -Wall -Wextra -Werror tests/hooks_ignored.c $link{$kind} -o $prog "
		  . "2>$dir/cc.log"), 0, "hooks_ignored builds, $kind") or diag(`cat $dir/cc.log`);
	like(`readelf -d $prog`, $kind eq 'shared' ? qr/libpstm\.so\.0/ : qr/\A(?!.*libpstm)/s,
	     "hooks_ignored links libpstm $kind");
	my ($shm, $file) = ('shm:' . shm_name('install'), "$hooks/$kind.region");
	my %env = (LD_LIBRARY_PATH => "$prefix/lib");
	if ($kind eq 'shared') {
		($rc, $out, my $err) = run_program(\%env, $prog, $shm, $file);
		is($rc, 0, 'hooks_ignored, switches unset: exits 0') or diag("$out$err");
		exact_on($out, $shm, '... no update lost on shm:');
		exact_on($out, $file, '... nor on a file region');
	}
	($rc, $out, my $err) = run_program({%env, %hooks_on}, $prog, $shm, $file);
	is($rc, 0, "$kind, test switches set: hooks_ignored exits 0") or diag("$out$err");
	exact_on($out, $shm, '... no update lost on shm: (validation not broken)');
	exact_on($out, $file, '... nor on a file region, run to the end');
	ok(!-e $img, '... no power-failure image written');
	# a run that stopped early leaves its file region and /dev/shm runtime
	run_program("$prefix/bin/pstm", 'rm', $file) if -e $file;
	unlink($img);
}
done_testing();
