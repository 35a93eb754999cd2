#!/usr/bin/perl
# make install into a temporary prefix (with a multiarch-style LIBDIR),
# then build and run a tiny outside program with nothing but
# `pkg-config --cflags --libs pstm`, and tests/hooks_ignored.c, shared and
# static, to show that the installed library ignores the test-only
# PSTM_TEST_* switches.  Also: make install builds no test (needs no
# cmocka), installs man pages, docs and the bash completion, honours
# DESTDIR; make uninstall removes exactly what it installed.
use strict;
use warnings;
use Test::More;
use File::Find qw(find);
use lib 'tests';
use PstmTest;

my $b = build_dir();
my $dir = temp_dir('install');
my $prefix = "$dir/prefix";
my $libdir = "$prefix/lib/x86_64-linux-gnu";    # Debian multiarch style
my $vars = "B=$b PREFIX=$prefix LIBDIR=$libdir";

# every file and link under $_[0], relative to it, sorted
sub tree {
	my ($top) = @_;
	my @f;
	find({ no_chdir => 1, wanted => sub {
		push @f, substr($_, length($top) + 1) if -f $_ || -l $_; } }, $top)
	    if -d $top;
	return join("\n", sort @f) . "\n";
}

# ------------------------------------- make install needs no test build
# A dry run into an empty build folder lists every command make install
# would run from scratch: the library and the tools, nothing of tests/
# (cmocka) or examples/.
my $dry = `make -n install B=$dir/fresh PREFIX=$prefix 2>&1`;
is($?, 0, 'make -n install from an empty build folder');
like($dry, qr/libpstm\.so\.\S+ .*lib\/\S+\.o/, '... builds the shared library');
like($dry, qr/-o \S*pstm-crashtest /, '... and the tools');
my @tests = grep { /cmocka|tests\/|examples\// } split /\n/, $dry;
is(scalar(@tests), 0, '... and no test program, no example, no cmocka')
    or diag(join "\n", @tests[0 .. ($#tests < 5 ? $#tests : 5)]);

# files of other packages, which make uninstall must leave alone
system("mkdir -p $prefix/bin $prefix/share/doc/other $libdir/pkgconfig");
for my $f ("$prefix/bin/other", "$prefix/share/doc/other/README",
	   "$libdir/pkgconfig/other.pc") {
	open(my $o, '>', $f) or die "$f: $!";
	close $o;
}
my $before = tree($prefix);

is(system("make -s install $vars >$dir/install.log 2>&1"), 0,
   'make install PREFIX=... LIBDIR=...') or diag(`cat $dir/install.log`);
ok(-f "$prefix/include/pstm.h", 'header installed');
ok(-l "$libdir/libpstm.so.0" && -f "$libdir/libpstm.so.0" && -f "$libdir/libpstm.a",
   'libraries and the soname link installed in LIBDIR');
ok(!glob("$prefix/lib/libpstm*"), '... and nothing in PREFIX/lib');
ok(-f "$libdir/pkgconfig/pstm.pc", 'pkg-config file installed in LIBDIR/pkgconfig');
like(slurp("$libdir/pkgconfig/pstm.pc"), qr/^libdir=\Q$libdir\E$/m, '... naming LIBDIR');
for my $m (qw(man1/pstm.1 man1/pstm-crashtest.1 man3/pstm.3 man3/pstm_ds.3 man8/pstmd.8)) {
	my $page = slurp("$prefix/share/man/$m");
	ok($page =~ /^\.SH EXAMPLES$/m && $page =~ /^\.SH FILES$/m,
	   "man page $m installed, with EXAMPLES and FILES");
	SKIP: {
		skip 'no groff', 1 unless `sh -c 'command -v groff'`;
		my $warn = `groff -man -ww -z $prefix/share/man/$m 2>&1`;
		is($warn, '', "... groff finds nothing to warn about");
	}
}
ok(-x "$prefix/bin/pstm", 'CLI installed');
ok(-x "$prefix/bin/pstm-crashtest" && -f "$prefix/share/man/man1/pstm-crashtest.1",
   'pstm-crashtest and its man page installed');
ok(-x "$prefix/sbin/pstmd", 'pstmd installed in sbin');
my $units = "$prefix/lib/systemd/system";
like(slurp("$units/pstmd.service"), qr/^ExecStart=\Q$prefix\E\/sbin\/pstmd --foreground$/m,
     '... with pstmd.service naming it');
like(slurp("$units/pstmd.socket"), qr/^ListenSequentialPacket=\/run\/pstm\/pstmd\.sock$/m,
     '... and pstmd.socket');
SKIP: {
	skip 'no systemd-analyze', 1 unless `sh -c 'command -v systemd-analyze'`;
	my $v = `systemd-analyze verify --man=no $units/pstmd.socket $units/pstmd.service 2>&1`;
	$v = join "\n", grep { /pstmd/ && !/not executable|No such file/ } split /\n/, $v;
	is($v, '', '... which systemd-analyze verify accepts');
}
ok(-f "$prefix/include/pstm_ds.h" && -f "$prefix/include/pstm_crashtest.h",
   'every public header installed');
my @docs = ('README.md', map { s{.*/}{}r } glob('docs/*.md'));
is(scalar(grep { -f "$prefix/share/doc/pstm/$_" } @docs), scalar(@docs),
   "docs installed in share/doc/pstm (@docs)");

# the bash completion: installed for both tools, and it completes
my $comp = "$prefix/share/bash-completion/completions";
ok(-f "$comp/pstm" && -e "$comp/pstm-crashtest", 'bash completion installed for both tools');
my $complete = sub {
	my @words = @_;
	open(my $sh, '>', "$dir/comp.sh") or die;
	print $sh "source $comp/pstm\n",
	    'COMP_WORDS=(' . join(' ', map { "'$_'" } @words) . ")\n",
	    'COMP_CWORD=' . $#words . "\n",
	    ($words[0] =~ /crashtest/ ? '_pstm_crashtest' : '_pstm') . "\n",
	    'printf "%s\n" "${COMPREPLY[@]}" | sort' . "\n";
	close $sh;
	return `bash $dir/comp.sh 2>&1`;
};
is($complete->("$prefix/bin/pstm", 'c'), "check\nconflicts\ncopy\ncreate\n", 'completion: pstm c<TAB>');
is($complete->("$prefix/bin/pstm", 'top', '--i'), "--interval\n", 'completion: pstm top --i<TAB>');
is($complete->("$prefix/bin/pstm", 'copy', '--comp'), "--compact\n", 'completion: pstm copy --comp<TAB>');
is($complete->("$prefix/bin/pstm", 'top', '--count', ''), "\n", 'completion: nothing after --count (a number)');
is($complete->("$prefix/bin/pstm", 'create', '--max-'), "--max-procs\n--max-threads\n",
   'completion: pstm create --max-<TAB>, from the help text');
is($complete->("$prefix/bin/pstm", 'help', 're'), "recover\n", 'completion: pstm help re<TAB>');
is($complete->("$prefix/bin/pstm", 'q'), "queue\n", 'completion: pstm q<TAB>');
is($complete->("$prefix/bin/pstm", 'queue', '--r'), "--retry-failed\n",
   'completion: pstm queue --r<TAB>');
is($complete->("$prefix/bin/pstm-crashtest", '--powerf'), "--powerfail\n",
   'completion: pstm-crashtest --powerf<TAB>');

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

$ENV{PKG_CONFIG_PATH} = "$libdir/pkgconfig";
my $flags = `pkg-config --cflags --libs pstm`;
is($?, 0, 'pkg-config knows pstm');
chomp $flags;
is(system("cc -Wall -Werror $dir/prog.c $flags -o $dir/prog 2>$dir/cc.log"), 0,
   'outside program builds with pkg-config flags') or diag(`cat $dir/cc.log`);
my ($rc, $out) = run_program({LD_LIBRARY_PATH => $libdir}, "$dir/prog",
			     'shm:' . shm_name('install'));
is($out, "0 41\n", 'outside program runs against the shared library');
my $needed = `readelf -d $dir/prog`;
like($needed, qr/libpstm\.so\.0/, 'linked against the soname');
my $syms = `nm -D --defined-only $libdir/libpstm.so`;
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
($rc, $out) = run_program({LD_LIBRARY_PATH => $libdir}, "$dir/version");
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
	my %env = (LD_LIBRARY_PATH => $libdir);
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

# ------------------------------------------------------- make uninstall
is(system("make -s uninstall $vars >$dir/uninstall.log 2>&1"), 0, 'make uninstall')
    or diag(`cat $dir/uninstall.log`);
is(tree($prefix), $before, '... leaves exactly the files that were there before');
ok(!-e "$prefix/share/doc/pstm", '... and removes share/doc/pstm');

# ------------------------------------------- DESTDIR, the default LIBDIR
# as a package build does it: PREFIX=/usr staged under DESTDIR
my $dest = "$dir/dest";
is(system("make -s install B=$b DESTDIR=$dest PREFIX=/usr >$dir/install.log 2>&1"), 0,
   'make install DESTDIR=... PREFIX=/usr') or diag(`cat $dir/install.log`);
ok(-f "$dest/usr/lib/libpstm.so.$release" && -x "$dest/usr/bin/pstm" && -x "$dest/usr/sbin/pstmd"
   && -f "$dest/usr/lib/systemd/system/pstmd.service"
   && -f "$dest/usr/share/bash-completion/completions/pstm", '... staged under DESTDIR');
my $pc = slurp("$dest/usr/lib/pkgconfig/pstm.pc");
ok($pc =~ /^prefix=\/usr$/m && $pc =~ /^libdir=\/usr\/lib$/m
   && $pc =~ /^includedir=\/usr\/include$/m, '... pstm.pc names the final paths, not DESTDIR');
is(system("make -s uninstall B=$b DESTDIR=$dest PREFIX=/usr >$dir/uninstall.log 2>&1"), 0,
   'make uninstall DESTDIR=... PREFIX=/usr') or diag(`cat $dir/uninstall.log`);
is(tree($dest), "\n", '... leaves no file');
done_testing();
