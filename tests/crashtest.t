#!/usr/bin/perl
# crashtest.t - pstm-crashtest: short campaigns (built-in bank on shm: and
# on a file with power failures, the example workload object), exit
# statuses (0 ok, 1 violation, 2 usage), the summary and its JSON, and
# that deliberately broken workloads (tests/broken_workload.c, built here
# with cc) are caught.  Runs $PSTM_BIN/pstm-crashtest (default build/).
use strict;
use warnings;
use File::Temp qw(tempdir);
use JSON::PP qw(decode_json);
use POSIX qw(_exit);
use Test::More;

my $bdir = $ENV{PSTM_BIN} // 'build';
my $bin = "$bdir/pstm-crashtest";
plan skip_all => "$bin not built" unless -x $bin;

# file regions go to tmpfs: the power-failure images copy the region
my $tmp = tempdir('pstm-ct-XXXXXX', DIR => (-d '/dev/shm' ? '/dev/shm' : '/tmp'),
		  CLEANUP => 1);
my (@shm_names, $seq);

sub shm_uri {
	my $n = "pstm-test-ct-$$-" . $seq++;
	push @shm_names, $n;
	return "shm:$n";
}

sub slurp {
	my ($f) = @_;
	open(my $fh, '<', $f) or return '';
	local $/;
	my $s = <$fh>;
	return $s // '';
}

# run the tool with @args (and %$env); returns (exit status, stdout, stderr)
sub crashtest {
	my ($env, @args) = ref $_[0] eq 'HASH' ? @_ : ({}, @_);
	my ($out, $err) = ("$tmp/stdout", "$tmp/stderr");
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		@ENV{keys %$env} = values %$env;
		open(STDOUT, '>', $out) or _exit(126);
		open(STDERR, '>', $err) or _exit(126);
		exec($bin, @args) or _exit(127);
	}
	waitpid($pid, 0);
	my $st = $?;
	my $rc = $st & 127 ? 128 + ($st & 127) : $st >> 8;
	return ($rc, slurp($out), slurp($err));
}

sub json_run {
	my ($what, @args) = @_;
	my ($rc, $out, $err) = crashtest('--json', '--seed', 7, @args);
	is($rc, 0, "$what: exits 0") or diag("stdout: $out\nstderr: $err");
	my $j = eval { decode_json($out) };
	ok($j && ref $j eq 'HASH', "$what: --json prints one JSON object")
	    or diag("parse error: $@\noutput: $out");
	$j //= {};
	ok($j->{ok}, "$what: ok is true");
	is_deeply($j->{violations}, [], "$what: no violations");
	return $j;
}

my ($rc, $out, $err, $j);

# ---------------------------------------------------------------- usage
($rc, $out, $err) = crashtest('--help');
is($rc, 0, '--help exits 0');
like($out, qr/usage: pstm-crashtest/, '--help prints usage on stdout');
is($err, '', '--help prints nothing on stderr');

my $u = shm_uri();
for my $args ([], [$u, $u], ['--procs', '0', $u], ['--procs', '65', $u],
	      ['--rounds', 'x', $u], ['--bogus', $u], ['--powerfail', '5', $u],
	      ['--pmem', $u], ['--no-kills', '--no-points', $u],
	      ['--points', 'commit.nowhere', $u], ['--size', '12Q', $u]) {
	($rc, $out, $err) = crashtest(@$args);
	is($rc, 2, "usage error exits 2: @$args");
	isnt($err, '', '... with a message on stderr');
}
(my $un = $u) =~ s/^shm://;
ok(!-e "/dev/shm/$un", 'no usage error created a region');

($rc, $out, $err) = crashtest('--workload', "$tmp/missing.so", $u);
is($rc, 1, 'a workload object that does not load: exit 1');
like($err, qr/cannot load workload/, '... saying why');

# ------------------------------------------------- built-in bank, shm:
my $s = shm_uri();
$j = json_run('bank on shm:', '--rounds', 200, '--point-rounds', 2, $s);
is($j->{workload}, 'bank (built-in)', 'the built-in bank is the default');
is($j->{procs}, 3, '3 workers by default');
is($j->{random_kills}, 200, '200 random kills');
is($j->{crash_point_victims}, 12, 'a victim at each of the 6 commit points, twice');
is($j->{recovery_point_victims}, 4, 'an opener killed at each of the 2 recovery points, twice');
is($j->{powerfail_images}, 0, 'no power failures on shm:');
is($j->{crashes}, 200 + 12 + 4 * 2, 'crashes: kills, victims, victims and openers');
ok($j->{checks} > 200 + 12 + 4, 'a check after every crash round');
ok($j->{commits} > 0, 'workers committed');
ok(defined $j->{worst_tx_ms}, 'worst stall reported');
ok(ref $j->{kill_to_commit_ms} eq 'HASH' && $j->{kill_to_commit_ms}{samples} > 0,
   'time from a kill to the next survivor commit measured');
(my $sn = $s) =~ s/^shm://;
ok(!-e "/dev/shm/$sn", 'the region is removed after a clean run');

($rc, $out, $err) = crashtest('--rounds', 20, '--no-points', '--procs', 2, $s);
is($rc, 0, 'text summary run exits 0') or diag($err);
like($out, qr/^pstm-crashtest: workload bank \(built-in\) on \Q$s\E, 2 workers, seed \d+$/m,
     'summary: workload, region, workers, seed');
like($out, qr/^\s+random kills\s+20 rounds$/m, 'summary: random kills');
like($out, qr/^\s+commits\s+\d+ acknowledged$/m, 'summary: commits');
like($out, qr/^\s+worst stall\s+[\d.]+ ms/m, 'summary: worst stall');
like($out, qr/^\s+violations\s+0$/m, 'summary: no violations');
like($out, qr/^OK$/m, 'summary ends OK');

# ----------------------------------------- built-in bank, file region
my $f = "$tmp/bank.region";
$j = json_run('bank on a file', '--rounds', 60, '--point-rounds', 1,
	      '--powerfail', 50, '--size', '2M', $f);
is($j->{random_kills}, 60, '60 random kills on a file region');
is($j->{crash_point_victims} + $j->{recovery_point_victims}, 8, 'all 8 crash points');
is($j->{powerfail_images}, 50, '50 simulated power failures');
is($j->{persistence}, 'msync', 'persistence by msync on a plain file');
ok(!-e $f && !-e "$f.ct-work" && !-e "$f.ct-image", 'region, copy and image removed');

$j = json_run('bank on a file, --pmem', '--no-kills', '--no-points', '--pmem',
	      '--powerfail', 20, '--size', '2M', '--keep', $f);
is($j->{persistence}, 'pmem flush+drain', '--pmem: flush and drain as on pmem');
is($j->{powerfail_images}, 20, '--pmem: 20 power failures');
ok(-e $f, '--keep keeps the region');
unlink($f);

# ----------------------------------------------- the example workload
my $so = "$bdir/examples/crash_workload.so";
SKIP: {
	skip "$so not built", 11 unless -e $so;
	$j = json_run('example workload on shm:', '--workload', $so, '--rounds', 40,
		      '--point-rounds', 1, shm_uri());
	is($j->{workload}, 'stack', 'the workload names itself');
	ok($j->{commits} > 0, 'its steps committed');
	$j = json_run('example workload on a file', '--workload', $so, '--rounds', 20,
		      '--no-points', '--powerfail', 20, '--size', '2M', "$tmp/stack.region");
	is($j->{powerfail_images}, 20, '... with power failures');
}

# ------------------------------------------------- broken workloads
my $cc = $ENV{CC} // 'cc';
my $broken = "$tmp/broken.so";
SKIP: {
	skip "no C compiler ($cc)", 9
	    if system("$cc -shared -fPIC -Wall -Werror -Iinclude tests/broken_workload.c "
		      . "-o $broken 2>$tmp/cc.log") != 0;
	my $b = shm_uri();
	($rc, $out, $err) = crashtest('--workload', $broken, '--rounds', 10, $b);
	is($rc, 1, 'a workload whose invariant fails: exit 1');
	like($out, qr/invariant does not hold: deliberately broken/, '... the summary says what');
	like($out, qr/^FAILED/m, '... and FAILED');
	like($err, qr/\A[^\n]*VIOLATION[^\n]*\n\z/, '... one VIOLATION line on stderr');
	(my $bn = $b) =~ s/^shm://;
	ok(-e "/dev/shm/$bn", '... and the region is kept for inspection');

	($rc, $out, $err) = crashtest({PSTM_CT_BROKEN => 'step'}, '--workload', $broken,
				      '--rounds', 10, '--json', $b);
	is($rc, 1, 'a workload whose step fails: exit 1');
	$j = eval { decode_json($out) } // {};
	ok(!$j->{ok}, '... ok is false in the JSON');
	like($j->{violations}[0] // '', qr/failed a step/, '... the violation says a step failed');
	like($err, qr/step failed: the workload returned 7/, '... and the worker said why');
}

done_testing();

END {
	my $keep = $?;
	system("$bdir/pstm", 'rm', "shm:$_") for grep { -e "/dev/shm/$_" } @shm_names;
	$? = $keep;
}
