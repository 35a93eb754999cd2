#!/usr/bin/perl
# cli.t - the pstm admin CLI: create / info / rm / ls / gc on shm: and file
# regions, exit statuses (0 ok, 1 failed, 2 usage) and one-line error
# messages; --json and --pretty on every command, its error documents,
# --version and help, option errors that name their limits, sizes for
# people, info and check for a reader without write permission.
# Runs $PSTM_BIN/pstm (default build/pstm); cleans up everything it makes.
use strict;
use warnings;
use Encode ();
use IPC::Open2 qw(open2);
use JSON::PP qw(decode_json);
use Test::More;
use lib 'tests';
use PstmTest;

my $bin = build_dir() . '/pstm';
plan skip_all => "$bin not built" unless -x $bin;

my $tmp = temp_dir('cli');
my @uuids;    # of the file regions made here: their companions go at exit

# run the CLI with @args; returns (exit status, stdout, stderr)
sub pstm { return run_program($bin, @_); }

# exactly one non-empty line, newline-terminated
sub one_line {
	my ($s) = @_;
	return $s =~ /\A[^\n]+\n\z/;
}

sub json_info {
	my ($uri) = @_;
	my ($rc, $out, $err) = pstm('info', '--json', $uri);
	is($rc, 0, "info --json $uri exits 0") or diag($err);
	return json_object($out, "info --json $uri parses as a JSON object");
}

sub mode_of { return (stat($_[0]))[2] & 07777; }

# the companions of a file region in /dev/shm: pstm.KIND.<uuid>.<the
# identity of its file> (KIND rt: the runtime, wc: a relaxed working copy)
sub companions_of {
	my ($uuid, $kind) = @_;
	(my $hex = $uuid // 'none') =~ s/-//g;
	push @uuids, $hex;
	my @l = glob('/dev/shm/pstm.' . ($kind // 'rt') . ".$hex.*");
	return wantarray ? @l : scalar @l;    # the names, or how many
}

my $uuid_re = qr/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
my ($rc, $out, $err);

# ---------------------------------------------------------------- help
for my $h ('--help', '-h', 'help') {
	($rc, $out, $err) = pstm($h);
	is($rc, 0, "pstm $h exits 0");
	like($out, qr/usage: pstm/, "pstm $h prints usage on stdout");
	is($err, '', "pstm $h prints nothing on stderr");
}
for my $cmd (qw(create info rm ls gc copy top)) {
	($rc, $out, $err) = pstm($cmd, '--help');
	is($rc, 0, "pstm $cmd --help exits 0");
	like($out, qr/usage: pstm $cmd/, "pstm $cmd --help prints its usage");
}

# ------------------------------------------------------- create / info
my $a = shm_name('cli');
($rc, $out, $err) = pstm('create', "shm:$a");
is($rc, 0, 'create shm: exits 0') or diag($err);
is($err, '', 'create prints nothing on stderr');
ok(-f "/dev/shm/$a", "/dev/shm/$a exists");
is(-s "/dev/shm/$a", 64 << 20, 'default size is 64 MiB');
is(mode_of("/dev/shm/$a"), 0600, 'default mode is 0600');

($rc, $out, $err) = pstm('info', "shm:$a");
is($rc, 0, 'info exits 0') or diag($err);
my ($text_uuid) = $out =~ /($uuid_re)/;
ok($text_uuid, 'info shows a uuid') or diag($out);
like($out, qr/^size +64 MiB$/m, 'info shows the size for people: 64 MiB');

my $j = json_info("shm:$a");
is($j->{uuid}, $text_uuid, 'json uuid matches the text output');
like($j->{uuid} // '', qr/\A$uuid_re\z/, 'json uuid is a uuid');
is($j->{size_bytes}, 64 << 20, 'json size_bytes');
is($j->{durability}, 'volatile', 'json durability: shm defaults to volatile');
is(ref $j->{processes}, 'ARRAY', 'json processes is an array');
is(scalar @{$j->{processes} // [1]}, 0, 'info does not attach: no process listed');
is($j->{runtime}{found}, JSON::PP::true, 'json runtime found (inside the shm region)');
($rc, $out, $err) = pstm('info', "shm:$a", '--json');
is($rc, 0, 'info URI --json (option after URI) exits 0');
is(eval { decode_json($out)->{uuid} }, $j->{uuid}, '... same uuid');

# ------------------------------------------------- exists / --force
($rc, $out, $err) = pstm('create', "shm:$a");
is($rc, 1, 'create over an existing region exits 1');
ok(one_line($err), 'with a one-line error on stderr') or diag("stderr: '$err'");
like($err, qr/\Q$a\E/, 'the error names the region');
is(json_info("shm:$a")->{uuid}, $j->{uuid}, 'the existing region is untouched');

($rc, $out, $err) = pstm('create', '--force', "shm:$a");
is($rc, 0, 'create --force over an existing region exits 0') or diag($err);
my $j2 = json_info("shm:$a");
like($j2->{uuid} // '', qr/\A$uuid_re\z/, 'replaced region has a uuid');
isnt($j2->{uuid}, $j->{uuid}, 'create --force made a new region (new uuid)');

# ---------------------------------------------------- --size / --mode
my $b = shm_name('cli');
($rc, $out, $err) = pstm('create', '--size', '2M', "shm:$b");
is($rc, 0, 'create --size 2M exits 0') or diag($err);
is(-s "/dev/shm/$b", 2 << 20, '--size 2M: the segment is 2 MiB');
is(json_info("shm:$b")->{size_bytes}, 2 << 20, '--size 2M: info size_bytes');

my $c = shm_name('cli');
($rc, $out, $err) = pstm('create', '--mode', '0640', '--size', '1M', "shm:$c");
is($rc, 0, 'create --mode 0640 exits 0') or diag($err);
is(mode_of("/dev/shm/$c"), 0640, '--mode 0640 honoured');
is(json_info("shm:$c")->{size_bytes}, 1 << 20, '--size 1M (the minimum) works');

my $d = shm_name('cli');
($rc, $out, $err) = pstm('create', '--size=3M', '--max-procs', '5', "shm:$d");
is($rc, 0, 'create --size=3M --max-procs 5 exits 0') or diag($err);
my $jd = json_info("shm:$d");
is($jd->{size_bytes}, 3 << 20, '--size=3M honoured');
is($jd->{max_procs}, 5, '--max-procs 5 honoured');

# ----------------------------------------------------------- usage
my $u = shm_name('cli');
my @usage = (
	[],
	['frobnicate', "shm:$u"],
	['create'],
	['create', "shm:$u", "shm:$u-2"],
	['create', '--bogus', "shm:$u"],
	['create', '--size', 'lots', "shm:$u"],
	['create', '--size', '0', "shm:$u"],
	['create', '--size', '-2M', "shm:$u"],
	['create', '--mode', '999', "shm:$u"],
	['create', '--mode', '017777', "shm:$u"],
	['create', '--max-procs', 'x', "shm:$u"],
	['create', '--size'],
	['info'],
	['info', '--bogus', "shm:$a"],
	['info', "shm:$a", "shm:$b"],
	['rm'],
	['rm', "shm:$a", "shm:$b"],
	['rm', '--bogus'],
	['rm', '--force'],
	['ls', $tmp, $tmp],
	['ls', '--bogus'],
	['gc', $tmp],
	['gc', '--bogus'],
);
for my $args (@usage) {
	($rc, $out, $err) = pstm(@$args);
	is($rc, 2, "usage error exits 2: pstm @$args");
	isnt($err, '', '... with a message on stderr');
}
ok(!-e "/dev/shm/$u", 'no usage error created a region');
ok(-e "/dev/shm/$a" && -e "/dev/shm/$b", 'no usage error removed a region');

# sizes that overflow 64 bits must be refused, not wrapped around:
# (2^44 + 1) MiB is 2^64 + 1 MiB, which wraps to a valid 1 MiB;
# (2^54 + 1) KiB wraps to 1 KiB
for my $size ('17592186044417M', '18446744073709551617', '18014398509481985K') {
	my $ov = shm_name('cli');
	($rc, $out, $err) = pstm('create', '--size', $size, "shm:$ov");
	is($rc, 2, "create --size $size (overflows 64 bits) exits 2");
	ok(!-e "/dev/shm/$ov", '... and creates nothing');
}

# below the smallest region: a usage error naming the limit
($rc, $out, $err) = pstm('create', '--size', '4K', "shm:$u");
is($rc, 2, 'create --size 4K (below 1 MiB) exits 2');
like($err, qr/--size 4K: at least 1 MiB/, '... naming the limit') or diag($err);
ok(!-e "/dev/shm/$u", '... and creates nothing');
# a size the layout does not fit in is an operation failure
($rc, $out, $err) = pstm('create', '--size', '1M', '--max-threads', '2047',
			 '--log-bytes', '16M', "shm:$u");
is($rc, 1, 'create of a layout larger than --size exits 1');
ok(one_line($err), '... with a one-line error') or diag("stderr: '$err'");
like($err, qr/1 MiB is too small for its layout/, '... saying why') or diag($err);
ok(!-e "/dev/shm/$u", '... and creates nothing');

# ------------------------------------------------- missing / rm
my $m = shm_name('cli');
($rc, $out, $err) = pstm('info', "shm:$m");
is($rc, 1, 'info of a missing region exits 1');
ok(one_line($err), '... with a one-line error on stderr') or diag("stderr: '$err'");
like($err, qr/\Q$m\E/, '... naming the region');
is($out, '', '... and nothing on stdout');
ok(!-e "/dev/shm/$m", '... and does not create it');

($rc, $out, $err) = pstm('info', '--json', "shm:$m");
is($rc, 1, 'info --json of a missing region exits 1');
ok(one_line($err), '... with a one-line error on stderr');

for my $n ($a, $b, $c, $d) {
	($rc, $out, $err) = pstm('rm', "shm:$n");
	is($rc, 0, "rm shm:$n exits 0") or diag($err);
	ok(!-e "/dev/shm/$n", "/dev/shm/$n is gone");
}
($rc, $out, $err) = pstm('rm', "shm:$a");
is($rc, 1, 'rm of a missing region exits 1');
ok(one_line($err), '... with a one-line error on stderr') or diag("stderr: '$err'");
($rc, $out, $err) = pstm('info', "shm:$a");
is($rc, 1, 'info after rm exits 1');

# bad files: operation failures with one-line errors
my $junk = "$tmp/junk.region";
{
	open(my $fh, '>', $junk) or die;
	print $fh 'x' x 8192;
	close($fh);
}
($rc, $out, $err) = pstm('info', $junk);
is($rc, 1, 'info of a non-region file exits 1');
ok(one_line($err), '... with a one-line error on stderr') or diag("stderr: '$err'");
is(-s $junk, 8192, '... and leaves the file alone');
($rc, $out, $err) = pstm('create', $junk);
is($rc, 1, 'create over an existing non-region file exits 1');

# ------------------------------------------------------ file regions
my $f = "$tmp/r.region";
($rc, $out, $err) = pstm('create', '--size', '2M', $f);
is($rc, 0, 'create of a file region exits 0') or diag($err);
ok(-f $f, 'the region file exists');
is(-s $f, 2 << 20, 'file region size honoured');
my $jf = json_info($f);
is($jf->{durability}, 'durable', 'file regions default to durable');
is($jf->{size_bytes}, 2 << 20, 'json size_bytes of the file region');
my @comp = companions_of($jf->{uuid});
is(scalar @comp, 1, "one companion runtime exists") or diag("@comp");

($rc, $out, $err) = pstm('create', '--size', '2M', $f);
is($rc, 1, 'create over an existing file region exits 1');
ok(one_line($err), '... with a one-line error');
($rc, $out, $err) = pstm('create', '--force', '--size', '2M', $f);
is($rc, 0, 'create --force over a file region exits 0') or diag($err);
my $jf2 = json_info($f);
isnt($jf2->{uuid}, $jf->{uuid}, '--force: new uuid');
ok(!grep({ -e } @comp), "--force removed the old companion @comp");
@comp = companions_of($jf2->{uuid});
is(scalar @comp, 1, 'the new companion exists');

($rc, $out, $err) = pstm('rm', $f);
is($rc, 0, 'rm of a file region exits 0') or diag($err);
ok(!-e $f, 'the region file is gone');
ok(!grep({ -e } @comp), 'rm removed the companion /dev/shm/pstm.rt.* segment');
is(scalar companions_of($jf2->{uuid}), 0, '... and no other companion of it is left');

my $g = "$tmp/v.region";
($rc, $out, $err) = pstm('create', '--volatile', '--mode', '0640', '--size', '1M', $g);
is($rc, 0, 'create --volatile file region exits 0') or diag($err);
my $jg = json_info($g);
is(scalar companions_of($jg->{uuid}), 1, 'a volatile file region has a companion runtime');
is($jg->{durability}, 'volatile', '--volatile honoured on a file');
is(mode_of($g), 0640, '--mode 0640 honoured on a file');
($rc, $out, $err) = pstm('rm', $g);
is($rc, 0, 'rm of the volatile file region exits 0');
ok(!-e $g && !companions_of($jg->{uuid}), '... file and companion gone');

# --- relaxed regions ---------------------------------------------------
{
	my $x = "$tmp/x.region";
	my ($rc, $out, $err) = pstm('create', '--relaxed', '--flush-ms', '25', '--size', '4M', $x);
	is($rc, 0, 'create --relaxed --flush-ms 25 exits 0') or diag($err);
	my $jx = json_info($x);
	my $u = $jx->{uuid};
	my ($wc) = companions_of($u, 'wc');
	is($jx->{durability}, 'relaxed', 'json durability: relaxed');
	is($jx->{flush_ms}, 25, 'json flush_ms: 25');
	is($jx->{working_copy}{path}, $wc, 'json working_copy path');
	is($jx->{working_copy}{found}, JSON::PP::true, 'json working_copy found');
	ok(defined $wc && -s $wc == 4 << 20,
	   'the working copy /dev/shm/pstm.wc.* has the region size');
	($rc, $out) = pstm('info', $x);
	like($out, qr/relaxed, flushed to the file every 25 ms/, 'info names the flush interval');
	($rc, $out) = pstm('check', $x);
	is($rc, 0, 'check of a relaxed region exits 0');
	like($out, qr/relaxed, flush every 25 ms/, 'check reports the file side');
	($rc, $out, $err) = pstm('rm', $x);
	is($rc, 0, 'rm of a relaxed region exits 0');
	ok(!-e $x && !companions_of($u, 'wc') && !companions_of($u),
	   '... file, runtime and working copy gone');

	for my $bad (['--flush-ms', '5'], ['--relaxed', '--flush-ms', '0'],
		     ['--relaxed', '--flush-ms', '60001']) {
		($rc, $out, $err) = pstm('create', @$bad, "$tmp/bad.region");
		is($rc, 2, "create @$bad is a usage error");
		ok(one_line($err), '... with a one-line message') or diag($err);
	}
	my $n = shm_name('cli');
	($rc, $out, $err) = pstm('create', '--relaxed', "shm:$n");
	is($rc, 1, 'create --relaxed on shm: fails');
	ok(one_line($err), '... with a one-line message') or diag($err);
	ok(!-e "$tmp/bad.region", 'no region left behind');
}

# --- check / recover ---------------------------------------------------
{
	my $f = "$tmp/check.region";
	my ($rc) = pstm('create', '--size', '4M', $f);
	is($rc, 0, 'create file region for check');
	my ($out, $err);
	($rc, $out) = pstm('check', $f);
	is($rc, 0, 'check: clean region exits 0');
	like($out, qr/clean/, 'check says clean');
	($rc, $out) = pstm('check', '--json', $f);
	is($rc, 0, 'check --json exits 0');
	my $j = eval { decode_json($out) };
	ok($j && $j->{clean} && ref $j->{findings} eq 'ARRAY', 'check --json parses')
		or diag($out);
	($rc, $out) = pstm('recover', $f);
	is($rc, 0, 'recover exits 0');
	like($out, qr/dead process.*recovered/, 'recover reports what it did');
	($rc, $out) = pstm('info', '--json', $f);
	my $info = decode_json($out);
	companions_of($info->{uuid}); # removed at exit
	# damage the heap header magic: the 512-byte heap header sits just
	# before the user heap that info reports
	open(my $fh, '+<', $f) or die;
	seek($fh, $info->{layout}{heap_off} - 512, 0);
	print $fh "\0" x 8;
	close $fh;
	($rc, $out, $err) = pstm('check', $f);
	is($rc, 1, 'check: damaged region exits 1');
	like($out, qr/DAMAGED/, 'check says DAMAGED');
	($rc, $out, $err) = pstm('check', "$tmp/nonexistent");
	is($rc, 1, 'check: missing region exits 1');
	ok(one_line($err), 'check: missing region gives a one-line error');
	($rc) = pstm('check');
	is($rc, 2, 'check without URI is a usage error');
	($rc) = pstm('recover', '--bogus');
	is($rc, 2, 'recover with a bad option is a usage error');
	($rc) = pstm('check', '--help');
	is($rc, 0, 'check --help');
	($rc, $out, $err) = pstm('rm', $f);
	is($rc, 0, 'rm of the damaged region exits 0') or diag($err);
}

# ------------------------------------------------ --version and help
{
	open(my $h, '<', 'include/pstm.h') or die "include/pstm.h: $!";
	my %v = map { /^#define PSTM_VERSION_(MAJOR|MINOR|PATCH) (\d+)/ ? ($1 => $2) : () }
		<$h>;
	close $h;
	my $want = join('.', map { $v{$_} // '?' } qw(MAJOR MINOR PATCH));
	($rc, $out, $err) = pstm('--version');
	is($rc, 0, 'pstm --version exits 0');
	is($out, "pstm $want\n", "pstm --version: the release of pstm.h, $want");
	for my $man (glob('docs/*.[1-8]')) {
		my ($th) = PstmTest::slurp($man) =~ /^\.TH .*"pstm ([^"]*)"/m;
		is($th, $want, "$man: its .TH names the release");
	}

	for my $cmd (qw(create info check recover dump load rm ls gc copy top)) {
		my (undef, $help) = pstm($cmd, '--help');
		($rc, $out, $err) = pstm('help', $cmd);
		is($rc, 0, "pstm help $cmd exits 0");
		is($out, $help, "... and prints what pstm $cmd --help does");
		like($help, qr/--json\|--pretty/, "pstm $cmd --help names --json and --pretty");
	}
	($rc, $out, $err) = pstm('help', 'frobnicate');
	is($rc, 2, 'pstm help of an unknown command exits 2');
	ok(one_line($err), '... with a one-line message');
}

# --------------------------------------- --json / --pretty, every command
{
	my $r = "$tmp/json.region";
	for my $style ('--json', '--pretty') {
		my %j;
		my @steps = (['create', '--size', '2M'], ['info'], ['check'], ['recover'],
			     ['dump'], ['rm']);
		for my $step (@steps) {
			my ($cmd, @opts) = @$step;
			($rc, $out, $err) = pstm($cmd, @opts, $style, $r);
			is($rc, 0, "$cmd $style exits 0") or diag($err);
			if ($style eq '--json') {
				ok(one_line($out), "... one line");
			} else {
				ok(($out =~ tr/\n//) > 2, "... indented over several lines");
			}
			$j{$cmd} = json_object($out, "... one JSON object");
			is($j{$cmd}{uri}, $r, "... whose uri is the region's");
		}
		companions_of($j{create}{uuid});
		is($j{create}{size_bytes}, 2 << 20, "create $style: size_bytes");
		like($j{create}{uuid} // '', qr/\A$uuid_re\z/, "create $style: uuid");
		is($j{info}{uuid}, $j{create}{uuid}, "info $style: the uuid create printed");
		is($j{info}{max_procs}, $j{create}{max_procs}, "info $style: create's keys");
		is($j{info}{runtime}{found}, JSON::PP::true, "info $style: runtime found");
		like($j{info}{runtime}{path} // '', qr{^/dev/shm/pstm\.rt\.},
		     "info $style: runtime path, the companion");
		is($j{check}{clean}, JSON::PP::true, "check $style: clean");
		is($j{recover}{processes_recovered}, 0, "recover $style: nothing to recover");
		is($j{recover}{logs_replayed}, 0, "recover $style: no log replayed");
		ok(exists $j{dump}{root} && !defined $j{dump}{root}, "dump $style: no root");
		is_deeply($j{dump}{objects}, [], "dump $style: no objects");
		is($j{rm}{removed}, JSON::PP::true, "rm $style: removed");
		ok(!-e $r, "rm $style: the region is gone");
	}

	# errors: the exit status as without --json, the error document on
	# stdout, the one-line message on stderr
	my $m = "$tmp/missing.region";
	for my $cmd (qw(info check recover dump rm)) {
		for my $style ('--json', '--pretty') {
			($rc, $out, $err) = pstm($cmd, $style, $m);
			is($rc, 1, "$cmd $style of a missing region exits 1");
			ok(one_line($err), '... with a one-line message on stderr') or diag($err);
			my $e = json_object($out, '... and an error document on stdout');
			is($e->{uri}, $m, '... naming the region');
			is($e->{error}{code}, 'PSTM_ENOENT', '... code PSTM_ENOENT');
			like($e->{error}{message} // '', qr/region does not exist/,
			     '... and the message');
			is(join(',', sort keys %$e), 'error,uri', '... and nothing else');
		}
	}
	my $x = shm_name('cli');
	($rc) = pstm('create', '--size', '1M', "shm:$x");
	($rc, $out, $err) = pstm('create', '--json', "shm:$x");
	is($rc, 1, 'create --json over a region exits 1');
	my $e = json_object($out, '... with an error document');
	is($e->{error}{code}, 'PSTM_EEXIST', '... code PSTM_EEXIST');
	like($e->{error}{message} // '', qr/--force replaces it/, '... saying what would');
	pstm('rm', "shm:$x");

	# a usage error stays text on stderr, even with --json
	($rc, $out, $err) = pstm('info', '--json', '--bogus', $m);
	is($rc, 2, 'a usage error with --json exits 2');
	is($out, '', '... and prints nothing on stdout');
}

# ------------------------------ dump: UTF-8 text as text, \xNN in text form
{
	my $kv = build_dir() . '/examples/kv';
	my $n = 'shm:' . shm_name('cli');
	my ($k, $v) = ("\x{43a}\x{43b}\x{44e}\x{447}", "a\x{1}\"\\/\x{7f}");  # "ключ"
	my ($kb, $vb) = (Encode::encode('UTF-8', $k), $v);
	($rc, $out, $err) = run_program($kv, 'put', $n, $kb, $vb);
	is($rc, 0, 'kv put of a UTF-8 key and a value with control bytes') or diag($err);
	for my $style ('--json', '--pretty') {
		($rc, $out, $err) = pstm('dump', $style, $n);
		is($rc, 0, "dump $style exits 0") or diag($err);
		my $d = json_object($out, '... one JSON object');
		my ($e) = map { @{$_->{entries} // []} } grep { $_->{type} eq 'map' }
			@{$d->{objects} // []};
		is($e->{key}, $k, '... the UTF-8 key: a string of its text');
		is($e->{value}, $v, '... the value: control bytes, quote, backslash, slash');
	}
	($rc, $out) = pstm('dump', $n);
	like($out, qr/"\\xd0\\xba\\xd0\\xbb\\xd1\\x8e\\xd1\\x87" = "a\\x01\\"\\\\\/\\x7f"/,
	     'dump text: \\xNN for bytes that are not printable ASCII') or diag($out);
	pstm('rm', $n);
}

# ----------------------------- option errors: the field and its limit
{
	my $f = "$tmp/limits.region";
	my @cases = (
		[['--size', '0'], '--size 0: at least 1 MiB'],
		[['--size', '65T'], '--size 65T: at most 64 TiB'],
		[['--size', '17592186044417M'], '--size 17592186044417M: too large (at most 64 TiB)'],
		[['--size', 'lots'], '--size lots: not a size'],
		[['--size', ' -5'], '--size  -5: not a size'],
		[['--size', '+5M'], '--size +5M: not a size'],
		[['--size', '2Q'], '--size 2Q: not a size'],
		[['--max-procs', '5000'], '--max-procs 5000: at most 1023'],
		[['--max-procs', '0'], '--max-procs 0: at least 1'],
		[['--max-procs', ' 5'], '--max-procs  5: not a number'],
		[['--max-threads', '4096'], '--max-threads 4096: at most 2047'],
		[['--max-threads', '0'], '--max-threads 0: at least 1'],
		[['--log-bytes', '1G'], '--log-bytes 1G: at most 16 MiB'],
		[['--log-bytes', '1K'], '--log-bytes 1K: at least 4 KiB'],
		[['--orecs-log2', '27'], '--orecs-log2 27: at most 26'],
		[['--orecs-log2', '9'], '--orecs-log2 9: at least 10'],
		[['--relaxed', '--flush-ms', '60001'], '--flush-ms 60001: at most 60000'],
		[['--relaxed', '--flush-ms', '0'], '--flush-ms 0: at least 1'],
		[['--mode', '0'], '--mode 0: the owner needs read and write (at least 0600)'],
		[['--mode', '0400'], '--mode 0400: the owner needs read and write'],
		[['--mode', '017777'], '--mode 017777: at most 07777'],
		[['--mode', '999'], '--mode 999: not an octal mode'],
	);
	for my $c (@cases) {
		my ($args, $msg) = @$c;
		($rc, $out, $err) = pstm('create', @$args, $f);
		is($rc, 2, "create @$args exits 2");
		like($err, qr/^pstm: \Q$msg\E/, "... $msg") or diag($err);
		ok(one_line($err), '... on one line');
	}
	ok(!-e $f, 'no option error created a region');

	# K M G T: powers of 1024, on every size option
	($rc, $out, $err) = pstm('create', '--size', '1G', '--log-bytes', '8K',
				 '--orecs-log2', '12', '--volatile', $f);
	is($rc, 0, 'create --size 1G --log-bytes 8K --orecs-log2 12 exits 0') or diag($err);
	my $j = json_info($f);
	companions_of($j->{uuid});
	is($j->{size_bytes}, 1 << 30, '--size 1G: 2^30 bytes');
	is($j->{log_bytes}, 8 << 10, '--log-bytes 8K: 8192 bytes');
	is($j->{orecs}, 1 << 12, '--orecs-log2 12: 4096 orecs');
	($rc, $out) = pstm('info', $f);
	like($out, qr/^size +1 GiB$/m, 'info text: the size as 1 GiB');
	like($out, qr/^limits .* 8 KiB redo logs/m, 'info text: the log size as 8 KiB');
	like($out, qr/^heap +\S+ \S+ of \d+(\.\d)? MiB carved/m, 'info text: heap sizes in MiB');
	unlike($out, qr/\b\d{4,} (bytes|B)\b/, 'info text: no long byte counts') or diag($out);
	pstm('rm', $f);
}

# ------------------------ create failures said in the command line's terms
{
	my $d = "$tmp/no/such/dir";
	($rc, $out, $err) = pstm('create', "$d/r.region");
	is($rc, 1, 'create in a missing directory exits 1');
	like($err, qr/directory \Q$d\E does not exist/, '... naming the directory')
		or diag($err);
	($rc, $out, $err) = pstm('create', '--json', "$d/r.region");
	my $e = json_object($out, '... and with --json an error document');
	is($e->{error}{code}, 'PSTM_ENOENT', '... code PSTM_ENOENT');
	like($e->{error}{message} // '', qr/does not exist/, '... the same message');

	# ENOSPC: 60 TiB cannot fit in /dev/shm (posix_fallocate refuses at
	# once on a tmpfs with a size limit: run only where there is one)
	my ($total) = `df -Pk /dev/shm 2>/dev/null` =~ /\n\S+\s+(\d+)/;
	SKIP: {
		skip('/dev/shm has no size below 60 TiB', 4)
			unless $total && $total < 60 * 2**30;
		my $n = shm_name('cli');
		($rc, $out, $err) = pstm('create', '--size', '60T', "shm:$n");
		is($rc, 1, 'create --size 60T in /dev/shm exits 1');
		like($err, qr{no space left on device: the region needs 60 TiB, /dev/shm has \S+ \S+ free},
		     '... saying how much it needs and how much is free') or diag($err);
		ok(one_line($err), '... on one line');
		ok(!-e "/dev/shm/$n", '... and leaves nothing');
	}
}

# ------------------- info and check: read permission only, no runtime
{
	my $dir = temp_dir('ro');
	chmod(0755, $dir);
	my $f = "$dir/ro.region";
	($rc, $out, $err) = pstm('create', '--size', '2M', '--mode', '0644', $f);
	is($rc, 0, 'create a region readable by others') or diag($err);
	my $j = json_info($f);
	companions_of($j->{uuid});
	chmod(0444, $f);
	# as root, a reader is user nobody; as anyone else, ourselves on a
	# file we may no longer write
	my $uid = $> == 0 ? (getpwnam('nobody'))[2] // 65534 : undef;
	my $as = sub { return run_program_as($uid, $bin, @_); };
	($rc, $out, $err) = $as->('recover', $f);
	is($rc, 1, 'the reader cannot attach (recover fails)');
	like($err, qr/permission denied/, '... permission denied') or diag($err);
	($rc, $out, $err) = $as->('info', '--json', $f);
	is($rc, 0, 'info --json with read permission only exits 0') or diag($err);
	my $r = json_object($out, '... one JSON object');
	is($r->{uuid}, $j->{uuid}, '... the region');
	is($r->{runtime}{found}, JSON::PP::true, '... its runtime found');
	($rc, $out, $err) = $as->('info', $f);
	is($rc, 0, 'info with read permission only exits 0') or diag($err);
	like($out, qr/^runtime +\/dev\/shm\/pstm\.rt\.[\w.]+, clock \d+$/m, '... naming the runtime');
	($rc, $out, $err) = $as->('check', $f);
	is($rc, 0, 'check with read permission only exits 0') or diag($err);
	like($out, qr/clean/, '... clean');
	($rc, $out, $err) = $as->('check', '--json', $f);
	is(json_object($out, 'check --json as the reader')->{clean}, JSON::PP::true,
	   '... clean');

	# the runtime segment gone: info says so and builds nothing
	chmod(0644, $f);
	my ($comp) = companions_of($j->{uuid});
	ok(unlink($comp), 'remove the runtime segment');
	($rc, $out, $err) = pstm('info', '--json', $f);
	is($rc, 0, 'info --json without a runtime exits 0') or diag($err);
	$r = json_object($out, '... one JSON object');
	is($r->{runtime}{found}, JSON::PP::false, '... runtime not found');
	is($r->{runtime}{state}, 'missing', '... state missing');
	ok(!defined $r->{runtime}{clock}, '... no clock');
	($rc, $out) = pstm('info', $f);
	like($out, qr/^runtime +none \(/m, 'info text: runtime none');
	ok(!-e $comp, 'info did not rebuild the runtime');
	($rc, $out) = pstm('check', $f);
	is($rc, 0, 'check without a runtime exits 0');
	ok(!-e $comp, 'check did not rebuild it either');
	pstm('rm', $f);
}

# ------------------- dump --json | load: maps and queues, bytes exactly
{
	require MIME::Base64;
	my $kv = build_dir() . '/examples/kv';
	my $pp = JSON::PP->new->canonical;
	my $utf8 = sub { Encode::encode('UTF-8', $_[0]) };
	my ($ka, $kb, $kc, $kq, $kr) = map { 'shm:' . shm_name('cli') } 1 .. 5;
	my $put = sub { open(my $h, '>:raw', $_[0]) or die "$_[0]: $!"; print $h $_[1]; close $h; };
	# a dump without what differs between regions (uri, offsets, root
	# words) and with map entries sorted (their order is the table's);
	# $::a, $::b: this file has a lexical $a
	my $norm = sub {
		my ($j) = @_;
		delete $j->{uri};
		delete @{$j->{root} // {}}{qw(off words)};
		for my $o (@{$j->{objects} // []}) {
			delete $o->{off};
			$o->{entries} = [sort { $pp->encode($::a) cmp $pp->encode($::b) }
					 @{$o->{entries}}] if $o->{entries};
		}
		return $pp->encode($j);
	};
	my $dump = sub {
		my ($uri, $what) = @_;
		my ($rc, $out, $err) = pstm('dump', '--json', $uri);
		is($rc, 0, "dump --json $what exits 0") or diag($err);
		return ($out, json_object($out, "... one JSON object"));
	};
	my $entries = sub {
		my ($d, $word) = @_;
		my ($o) = grep { $_->{root_word} == $word } @{$d->{objects} // []};
		return $o // {};
	};
	my $bytes = sub {   # a dumped byte string back to its bytes
		my ($v) = @_;
		return ref $v ? MIME::Base64::decode_base64($v->{base64} // '') : $utf8->($v // '');
	};

	# region A, filled with examples/kv (a 64 KiB value needs a 1 MiB log)
	for my $r ($ka, $kb, $kc) {
		($rc, $out, $err) = pstm('create', '--size', '8M', '--log-bytes', '1M', $r);
		is($rc, 0, "create $r with a 1 MiB redo log") or diag($err);
	}
	my $big = join('', map { chr(1 + $_ % 255) } 0 .. 65535);
	my %want = (
		$utf8->("\x{43a}\x{43b}\x{44e}\x{447}") => $utf8->("\x{437}\x{43d}\x{430}\x{447}"),
		"\xff\xfe" => "\xc0\xaf",            # not UTF-8: 0xff, an overlong '/'
		"\xed\xa0\x80" => 'a surrogate',     # not UTF-8 either
		'' => 'the empty key',
		'empty value' => '',
		"tab\tquote\"back\\slash" => "\x01\x1f\x7f",
		big => $big,                         # 64 KiB, 0x01..0xff
	);
	for my $k (sort keys %want) {
		($rc, $out, $err) = run_program($kv, 'put', $ka, $k, $want{$k});
		is($rc, 0, 'kv put ' . length($k) . '-byte key, ' . length($want{$k}) .
		   '-byte value') or diag($err);
	}
	my ($da, $ja) = $dump->($ka, 'of the kv region');
	my %got = map { $bytes->($_->{key}) => $_->{value} } @{$entries->($ja, 0)->{entries} // []};
	is(scalar(keys %got), scalar(keys %want), 'dump: every entry');
	is($got{$utf8->("\x{43a}\x{43b}\x{44e}\x{447}")}, "\x{437}\x{43d}\x{430}\x{447}",
	   'dump --json: the UTF-8 key "ключ" is a string of its text, its value too');
	ok($da =~ /\{"key":\{"base64":"\/\/4="\},"value":\{"base64":"wK8="\}\}/,
	   'dump --json: a key with 0xff and a value of an overlong form as {"base64"}');
	ok(ref $got{"\xed\xa0\x80"} eq '' && $got{"\xed\xa0\x80"} eq 'a surrogate',
	   'dump --json: a UTF-8 surrogate key is not text (found as base64)');
	is($got{''}, 'the empty key', 'dump --json: the empty key, a string');
	is($got{'empty value'}, '', 'dump --json: the empty value, a string');
	is($bytes->($got{big}), $big, 'dump --json: the 64 KiB value, base64 of its bytes');
	unlike($da, qr/\\u00[c-f]/i, 'dump --json: no byte as a Latin-1 character');

	# load it into B, dump B: the same
	$put->("$tmp/a.json", $da);
	($rc, $out, $err) = pstm('load', $kb, "$tmp/a.json");
	is($rc, 0, 'load URI FILE exits 0') or diag($err);
	like($out, qr/^root word 0: map @\d+ \(created\), 7 entries put$/m,
	     '... creating the map, 7 entries') or diag($out);
	my ($db, $jb) = $dump->($kb, 'of the loaded region');
	ok($norm->($jb) eq $norm->($ja), 'the loaded region dumps as the original')
		or diag(substr($norm->($jb), 0, 300) . "\n" . substr($norm->($ja), 0, 300));
	($rc, $out, $err) = run_program($kv, 'get', $kb, "\xff\xfe");
	is($out, "\xc0\xaf\n", '... and kv get reads the binary key\'s value');

	# and again, from B into C through standard input: byte for byte
	($rc, $out, $err) = run_program('/bin/sh', '-c', "'$bin' load --json '$kc' < '$tmp/a.json'");
	is($rc, 0, 'load URI < FILE exits 0') or diag($err);
	my $jl = json_object($out, 'load --json: one JSON object');
	is($jl->{uri}, $kc, '... its uri');
	is($jl->{root_created}, JSON::PP::true, '... root_created');
	is($jl->{objects}[0]{entries}, 7, '... objects[0].entries 7');
	is($jl->{objects}[0]{created}, JSON::PP::true, '... objects[0].created');
	my ($dc) = $dump->($kc, 'of the second loaded region');
	(my $x = $dc) =~ s/\Q$kc\E/$kb/;
	ok($x eq $db, 'two regions loaded from one dump dump byte for byte the same');

	# a queue (items in order) and NUL bytes: written by hand, base64 and \u0000
	my @items = ('first', "\x00\xff", '', $utf8->("\x{43a}"), "a\x00b", 'last');
	my $doc = '{"root": {"bytes": 16}, "objects": ['
		. '{"root_word": 0, "type": "queue", "items": ["first", {"base64": "AP8="}, "",'
		. ' "' . $utf8->("\x{43a}") . '", "a\u0000b", "last"]},'
		. '{"root_word": 1, "type": "map", "entries": [{"key": {"base64": "AA=="},'
		. ' "value": "nul"}]}]}';
	$put->("$tmp/q.json", $doc);
	($rc, $out, $err) = pstm('create', '--size', '4M', $kq);
	($rc, $out, $err) = pstm('load', $kq, "$tmp/q.json");
	is($rc, 0, 'load a queue and a map written by hand') or diag($err);
	my ($dq, $jq) = $dump->($kq, 'of the queue region');
	is($jq->{root}{bytes}, 16, '... the root the dump asked for, 16 bytes');
	is_deeply([map { $bytes->($_) } @{$entries->($jq, 0)->{items} // []}], \@items,
		  '... the queue\'s items, in order, exactly');
	is_deeply($entries->($jq, 0)->{items}[4], {base64 => 'YQBi'},
		  '... "a\\u0000b" dumps as base64 (NUL is not text)');
	is_deeply($entries->($jq, 1)->{entries}, [{key => {base64 => 'AA=='}, value => 'nul'}],
		  '... the map with a NUL key');
	$put->("$tmp/q2.json", $dq);
	($rc, $out, $err) = pstm('create', '--size', '4M', $kr);
	($rc, $out, $err) = pstm('load', $kr, "$tmp/q2.json");
	is($rc, 0, 'load the queue region\'s dump') or diag($err);
	my ($dr, $jr) = $dump->($kr, 'of its copy');
	ok($norm->($jr) eq $norm->($jq), '... dumps as the original');

	# into a region that has them: map entries put, queue items appended
	($rc, $out, $err) = pstm('load', $kr, "$tmp/q2.json");
	is($rc, 0, 'load into the region that has the queue and map') or diag($err);
	like($out, qr/^root word 0: queue @\d+ \(existing\), 6 items appended$/m,
	     '... adds to the queue') or diag($out);
	(undef, $jr) = $dump->($kr, 'after the second load');
	is_deeply([map { $bytes->($_) } @{$entries->($jr, 0)->{items} // []}], [@items, @items],
		  '... the items after those there, in order');
	is($entries->($jr, 1)->{count}, 1, '... the map\'s key put again, not twice');

	# a root word of another kind: refused, nothing written
	($rc, $out, $err) = pstm('load', $kq, "$tmp/a.json");
	is($rc, 1, 'load a map over a root word that holds a queue exits 1');
	like($err, qr/^pstm: cannot load \Q$kq\E: objects\[0\]: root word 0 of this region holds a queue; the dump's is a map$/,
	     '... saying which word holds what') or diag($err);
	my ($dq2) = $dump->($kq, 'after the refusal');
	is($dq2, $dq, '... and the region is unchanged');

	# larger than the redo log: one large transaction (an overflow extent)
	my $small = 'shm:' . shm_name('cli');
	($rc, $out, $err) = pstm('create', '--size', '4M', $small);
	($rc, $out, $err) = pstm('load', $small, "$tmp/a.json");
	is($rc, 0, 'load of a 64 KiB value into a region with a 64 KiB redo log exits 0') or diag($err);
	like($out, qr/^root word 0: map @\d+ \(created\), 7 entries put$/m, '... every entry put');
	my (undef, $js) = $dump->($small, 'of the small region');
	my %sgot = map { $bytes->($_->{key}) => $_->{value} }
		@{$entries->($js, 0)->{entries} // []};
	is($bytes->($sgot{big}), $big, '... the 64 KiB value whole');
	pstm('rm', $small);

	# bad input: exit 1, one line naming what and where, nothing written
	(my $cut = $da) =~ s/\A(.{200}).*\z/$1/s;
	(my $wrongword = $da) =~ s/"root_word":0/"root_word":"0"/;
	(my $wrongtype = $da) =~ s/"type":"map"/"type":"tree"/;
	(my $count = $da) =~ s/"count":7/"count":8/;
	my @bad = (
		['', qr/empty/],
		["   \n", qr/empty/],
		['not json', qr/line 1, column 1: not JSON/],
		["{\"root\": null,\n \"objects\": [}", qr/line 2, column 13: not JSON: unexpected character/],
		[$cut, qr/the input ends inside the JSON document \(cut short\?\)/],
		["$da}", qr/more after the JSON document/],
		['[]', qr/the document is array, not an object/],
		['{"objects": []}', qr/no "root"/],
		['{"root": null}', qr/the document: no "objects"/],
		['{"root": 5, "objects": []}', qr/root: an object or null, not int/],
		['{"root": null, "objects": [{}]}', qr/objects: 1, but root is null/],
		['{"root": {"bytes": 0}, "objects": []}', qr/root\.bytes: 0: 1 up to/],
		[$wrongword, qr/objects\[0\]\.root_word: an integer, not string/],
		[$wrongtype, qr/objects\[0\]\.type: "map" or "queue", not "tree"/],
		[$count, qr/objects\[0\]\.count: 8, but it has 7 entries/],
		['{"root": {"bytes": 8}, "objects": [{"root_word": 1, "type": "queue", "items": []}]}',
		 qr/objects\[0\]\.root_word: 1: -1 \(the root\) up to 0/],
		['{"root": {"bytes": 16}, "objects": [{"root_word": 1, "type": "queue", "items": []},'
		 . ' {"root_word": 1, "type": "queue", "items": []}]}',
		 qr/objects\[1\]\.root_word: 1, as objects\[0\]'s/],
		['{"root": {"bytes": 8}, "objects": [{"root_word": 0, "type": "map"}]}',
		 qr/objects\[0\]: no "entries"/],
		['{"root": {"bytes": 8}, "objects": [{"root_word": 0, "type": "map", "entries": [{"key": "k"}]}]}',
		 qr/objects\[0\]\.entries\[0\]: no "value"/],
		['{"root": {"bytes": 8}, "objects": [{"root_word": 0, "type": "map", "entries": [{"key": 5, "value": ""}]}]}',
		 qr/objects\[0\]\.entries\[0\]\.key: a string or \{"base64": "\.\.\."\}, not int/],
		['{"root": {"bytes": 8}, "objects": [{"root_word": 0, "type": "queue", "items": [{"base64": "AA==", "x": 1}]}]}',
		 qr/objects\[0\]\.items\[0\]: a string or \{"base64": "\.\.\."\}, not an object with other keys/],
		['{"root": {"bytes": 8}, "objects": [{"root_word": 0, "type": "queue", "items": ["ok", {"base64": "a*=="}]}]}',
		 qr/objects\[0\]\.items\[1\]\.base64: not base64: '\*' at character 1/],
		['{"root": {"bytes": 8}, "objects": [{"root_word": 0, "type": "queue", "items": [{"base64": "AAA"}]}]}',
		 qr/items\[0\]\.base64: not base64: 3 characters, not a multiple of 4/],
		['{"root": {"bytes": 8}, "objects": [{"root_word": 0, "type": "queue", "items": [{"base64": "A=A="}]}]}',
		 qr/items\[0\]\.base64: not base64: '=' at character 1, before the end/],
		['{"root": {"bytes": 8}, "objects": [{"root_word": 0, "type": "queue", "items": [{"base64": "AB=="}]}]}',
		 qr/items\[0\]\.base64: not base64: bits set after the last byte/],
		['{"root": {"bytes": 8}, "objects": [{"root_word": 0, "type": "queue", "items": [{"base64": 7}]}]}',
		 qr/items\[0\]\.base64: a string, not int/],
		["{\"root\": {\"bytes\": 8}, \"objects\": [{\"root_word\": 0, \"type\": \"queue\", \"items\": [\"\xff\"]}]}",
		 qr/not JSON: invalid utf-8/i],
		["root \@123, 8 B\n", qr/this is pstm dump's text output; pstm load reads only its JSON form/],
	);
	my $n = 0;
	for my $c (@bad) {
		my ($in, $re) = @$c;
		$n++;
		$put->("$tmp/bad.json", $in);
		($rc, $out, $err) = pstm('load', $kq, "$tmp/bad.json");
		is($rc, 1, "bad input $n exits 1");
		like($err, qr/^pstm: cannot load \Q$kq\E: \Q$tmp\E\/bad\.json: .*$re/, "... $re")
			or diag($err);
		ok(one_line($err), '... on one line');
	}
	($rc, $out, $err) = pstm('load', '--json', $kq, "$tmp/bad.json");
	my $e = json_object($out, 'load --json of bad input: an error document');
	is($e->{error}{code}, 'PSTM_EINVAL', '... code PSTM_EINVAL');
	my ($dq3) = $dump->($kq, 'after all the bad input');
	is($dq3, $dq, '... which wrote nothing');
	($rc, $out, $err) = pstm('load', $kq, "$tmp/no-such.json");
	is($rc, 1, 'load of a missing file exits 1');
	like($err, qr/cannot open \Q$tmp\E\/no-such\.json: No such file/, '... saying so');
	($rc, $out, $err) = pstm('load', $kq, 'a', 'b');
	is($rc, 2, 'load URI FILE FILE is a usage error');
	($rc, $out, $err) = pstm('load', '--help');
	like($out, qr/usage: pstm load URI \[FILE\] \[--json\|--pretty\]/, 'load --help');
	pstm('rm', $_) for $ka, $kb, $kc, $kq, $kr;
}
# --- rm: only regions, not under attached processes -------------------
# A process attached to a region: build/tests/test_companion --hold URI
# prints "attached" and stays until its stdin closes.
my $holder_bin = build_dir() . '/tests/test_companion';
sub hold {
	my ($uri) = @_;
	my ($out, $in);
	my $pid = open2($out, $in, $holder_bin, '--hold', $uri);
	my $line = <$out> // '';
	is($line, "attached\n", "a process is attached to $uri");
	return {pid => $pid, in => $in, out => $out};
}
sub release {
	my ($h) = @_;
	close($h->{in});
	waitpid($h->{pid}, 0);
	return $? >> 8;
}

{
	# anything that is not a region is refused and left alone
	my $junk = "$tmp/random.bin";
	open(my $fh, '>', $junk) or die;
	print $fh "not a region\n" x 100;
	close($fh);
	my ($rc, $out, $err) = pstm('rm', $junk);
	is($rc, 1, 'rm of a non-region file exits 1');
	ok(one_line($err), '... with a one-line error') or diag($err);
	like($err, qr/not a pstm region/, '... saying it is not a region');
	is(-s $junk, 1300, '... and the file is still there, untouched');
	($rc, $out, $err) = pstm('rm', '--json', $junk);
	is($rc, 1, 'rm --json of a non-region exits 1');
	my $j = json_object($out, 'rm --json of a non-region prints a JSON object');
	is($j->{uri}, $junk, '... its uri');
	is($j->{error}{code}, 'PSTM_EBADMAGIC', '... the error document: its code');
	like($j->{error}{message} // '', qr/not a pstm region/, '... and its message');
	($rc, $out, $err) = pstm('rm', $tmp);
	is($rc, 1, 'rm of a directory exits 1');
	ok(-d $tmp, '... and leaves it');
	symlink($junk, "$tmp/link") or die;
	($rc, $out, $err) = pstm('rm', "$tmp/link");
	is($rc, 1, 'rm of a symbolic link exits 1');
	ok(-l "$tmp/link" && -e $junk, '... and removes neither');
	unlink("$tmp/link", $junk);

	# a region processes are attached to
	for my $uri ("$tmp/busy.region", 'shm:' . shm_name('cli')) {
		($rc, $out, $err) = pstm('create', '--size', '2M', $uri);
		is($rc, 0, "create $uri") or diag($err);
		my $u = json_info($uri)->{uuid};
		(my $path = $uri) =~ s{^shm:}{/dev/shm/};
		my $file = $uri !~ /^shm:/;
		my $h = hold($uri);
		($rc, $out, $err) = pstm('rm', $uri);
		is($rc, 1, "rm of $uri while a process is attached exits 1");
		ok(one_line($err), '... with a one-line error') or diag($err);
		like($err, qr/processes are attached.*--force/, '... saying why, and --force');
		ok(-e $path, '... the region is still there');
		is(scalar companions_of($u), $file ? 1 : 0, '... and so is its companion');
		is(release($h), 0, '... the attached process closes it fine');
		($rc, $out, $err) = pstm('rm', '--json', $uri);
		is($rc, 0, "rm --json of $uri once nobody is attached exits 0") or diag($err);
		my $jr = json_object($out, '... prints a JSON object');
		is($jr->{removed}, JSON::PP::true, '... removed: true');
		ok(!-e $path && !companions_of($u), '... region and companions gone');
	}

	# --force: under an attached process
	my $x = "$tmp/force.region";
	($rc, $out, $err) = pstm('create', '--relaxed', '--size', '2M', $x);
	is($rc, 0, 'create a relaxed region for rm --force') or diag($err);
	my $u = json_info($x)->{uuid};
	my $h = hold($x);
	is(scalar companions_of($u) + scalar companions_of($u, 'wc'), 2,
	   'its runtime and working copy exist');
	($rc, $out, $err) = pstm('rm', '--force', $x);
	is($rc, 0, 'rm --force under an attached process exits 0') or diag($err);
	ok(!-e $x, '... the region is gone');
	is(scalar companions_of($u) + scalar companions_of($u, 'wc'), 0,
	   '... and both its companions');
	is(release($h), 0, '... the attached process still closes cleanly');
}

# --- dump: an observer, with a stopped and a dead member --------------
# dump attaches as an observer (PSTM_OPEN_OBSERVE): it must leave a dead
# process for recovery, and neither wait for a stopped one nor for the
# locks a dead one left (it gives up after --timeout-ms)
{
	my $kv = build_dir() . '/examples/kv';
	my $n = 'shm:' . shm_name('cli');
	my ($rc, $out, $err) = run_program($kv, 'put', $n, 'k', 'v1');
	is($rc, 0, 'kv put, for dump with members') or diag($err);
	# (the stopped one first: an ordinary open would recover the dead)
	my $stopped = hold($n);
	kill('STOP', $stopped->{pid});
	my $dead = hold($n);
	kill('KILL', $dead->{pid});
	waitpid($dead->{pid}, 0);
	my $states = sub {   # pid => state, from info (which never recovers)
		my ($rc, $out) = pstm('info', '--json', $n);
		return map { $_->{pid} => $_->{state} }
			@{json_object($out, '... info --json')->{processes} // []};
	};
	my %st = $states->();
	is($st{$dead->{pid}}, 'dead', 'a member killed without closing is dead');
	my $t0 = time();
	($rc, $out, $err) = pstm('dump', '--json', $n);
	is($rc, 0, 'dump --json with a dead and a stopped member exits 0') or diag($err);
	my ($e) = map { @{$_->{entries} // []} } @{json_object($out, '... one JSON object')->{objects} // []};
	is_deeply($e, {key => 'k', value => 'v1'}, '... with the entry');
	ok(time() - $t0 < 5, '... at once (no waiting for the stopped one)');
	%st = $states->();
	is($st{$dead->{pid}}, 'dead', '... and the dead member is still there: not recovered');
	is($st{$stopped->{pid}}, 'alive', '... the stopped one alive');
	is(scalar(keys %st), 2, '... and dump left no entry of its own');
	($rc, $out, $err) = pstm('dump', $n);
	is($rc, 0, 'dump (text) exits 0 too') or diag($err);
	%st = $states->();
	is($st{$dead->{pid}}, 'dead', '... and recovers nothing either');
	kill('CONT', $stopped->{pid});
	is(release($stopped), 0, 'the stopped member, continued, closes fine');

	my $entry = sub {   # the map's one entry, from dump --json
		my ($rc, $out, $err) = pstm('dump', '--json', $n);
		is($rc, 0, "dump --json exits 0 ($_[0])") or diag($err);
		my ($e) = map { @{$_->{entries} // []} } @{json_object($out, '... one JSON object')->{objects} // []};
		return $e->{value} // '';
	};
	my $dead_members = sub { scalar(grep { $_ eq 'dead' } values %{{$states->()}}) };

	# a member killed before its commit point, holding its locks: dump
	# attaches nothing and stores nothing, so it aborts nobody's commit,
	# not even a dead one's; it reads the values from before that commit
	# (what its recovery keeps), at once, and the dead stays
	($rc, $out, $err) = run_program({PSTM_CRASH_AT => 'commit.locked:1'},
					$kv, 'put', $n, 'k', 'v2');
	is($rc, 128 + 9, 'kv put killed at commit.locked (before its commit point)');
	$t0 = time();
	is($entry->('beside the locks of a dead commit before its commit point'), 'v1',
	   'dump of words a commit that never was holds: the value from before it');
	ok(time() - $t0 < 10, '... at once, not blocked');
	# (kv's own open recovered the first dead member)
	is($dead_members->(), 1, '... and the dead member is still there: not recovered');
	# the next kv's open recovers it: its locks dropped, nothing changed

	# killed past its commit point: only recovery (replaying it) frees
	# its words, but a reader takes their committed values from its
	# redo record: dump waits for nobody and recovers nobody
	($rc, $out, $err) = run_program({PSTM_CRASH_AT => 'commit.logged:1'},
					$kv, 'put', $n, 'k', 'v3');
	is($rc, 128 + 9, 'kv put killed at commit.logged (past its commit point)');
	$t0 = time();
	is($entry->('past the locks of a dead commit past its commit point'), 'v3',
	   'dump of words a dead commit holds: its committed value, from its record');
	ok(time() - $t0 < 10, '... at once, not blocked');
	is($dead_members->(), 1, '... the dead member is still there: dump did not recover it');
	($rc, $out, $err) = pstm('recover', $n);
	is($rc, 0, 'pstm recover settles it') or diag($err);
	is($entry->('after recover'), 'v3', '... its commit replayed');
	is($dead_members->(), 0, '... and nobody dead is left');

	# stopped past its commit point (alive: nobody may recover it):
	# dump and copy give up at their timeouts, and go on once it does
	use POSIX ();
	my $pid = fork() // die;
	if ($pid == 0) {
		$ENV{PSTM_CRASH_AT} = 'commit.logged:1:stop';
		open(STDOUT, '>', '/dev/null');
		exec($kv, 'put', $n, 'k', 'v4') or POSIX::_exit(127);
	}
	waitpid($pid, POSIX::WUNTRACED());
	ok(POSIX::WIFSTOPPED(${^CHILD_ERROR_NATIVE}), 'kv put stopped at commit.logged');
	is($entry->('past a stopped commit'), 'v4',
	   'dump of words a stopped commit holds: its committed value, from its record');
	my $c = 'shm:' . shm_name('cli');
	($rc, $out, $err) = pstm('copy', '--timeout-ms', '300', '--json', $n, $c);
	is($rc, 1, 'copy with --timeout-ms of such a region gives up: exits 1');
	like($err, qr/no consistent copy in 300 ms/, '... saying why') or diag($err);
	is(json_object($out, '... an error document')->{error}{code}, 'PSTM_EBUSY', '... PSTM_EBUSY');
	ok(!-e "/dev/shm/" . ($c =~ s/^shm://r), '... and makes nothing');
	is({$states->()}->{$pid}, 'alive', '... the stopped writer is alive, untouched');
	kill('CONT', $pid);
	waitpid($pid, 0);
	is($?, 0, 'the writer, continued, commits and exits 0');
	is($entry->('once it went on'), 'v4', '... its value there');
	($rc, $out, $err) = pstm('copy', $n, $c);
	is($rc, 0, '... and copy goes on too') or diag($err);
	pstm('rm', $c);
	for my $bad (['--timeout-ms', 'x'], ['--timeout-ms', '86400001']) {
		($rc, $out, $err) = pstm('dump', @$bad, $n);
		is($rc, 2, "dump @$bad is a usage error");
	}
	pstm('rm', $n);
}

# --- copy: a consistent copy while a writer commits ---------------------
# build/tests/test_copy --writer URI moves money between 512 accounts
# spread over 1 MiB of heap until its stdin closes; --sum URI prints the
# total and the number of accounts: a copy must hold exactly 512000
my $ledger = build_dir() . '/tests/test_copy';
sub writer_start {
	my ($uri) = @_;
	my ($out, $in);
	my $pid = open2($out, $in, $ledger, '--writer', $uri);
	is(scalar(<$out> // ''), "ready\n", "a writer commits on $uri");
	return {pid => $pid, in => $in, out => $out};
}
sub writer_stop {
	my ($w) = @_;
	close($w->{in});
	my $n = readline($w->{out}) // '';
	waitpid($w->{pid}, 0);
	chomp $n;
	return ($? >> 8, $n);
}
sub ledger_sum {
	my ($uri) = @_;
	my ($rc, $out) = run_program($ledger, '--sum', $uri);
	return $rc == 0 ? $out : "failed: $rc";
}
{
	my $fdir = temp_dir('copy', tmpfs => 1);
	for my $kind ('shm', 'file') {
		my $n = 0;
		my $name = sub { $kind eq 'shm' ? 'shm:' . shm_name('cli') : "$fdir/c" . $n++ . '.region' };
		my $src = $name->();
		my ($rc, $out, $err) = pstm('create', '--size', '8M', '--mode', '0640', $src);
		is($rc, 0, "create the $kind source") or diag($err);
		my $sj = json_info($src);
		companions_of($sj->{uuid});
		my $w = writer_start($src);
		for my $how (['--json'], [], ['--passes', '1', '--json'], ['--compact', '--json']) {
			my $dst = $name->();
			($rc, $out, $err) = pstm('copy', @$how, $src, $dst);
			is($rc, 0, "copy @$how of a $kind region while it commits exits 0") or diag($err);
			if (@$how && $how->[-1] eq '--json') {
				my $j = json_object($out, '... one JSON object');
				is($j->{uri}, $src, '... uri: the source');
				is($j->{dst}, $dst, '... dst');
				like($j->{uuid} // '', qr/\A$uuid_re\z/, '... the new uuid');
				ok($j->{passes} >= 1 && $j->{chunks} >= $j->{passes}, '... passes, chunks');
				ok($j->{heap_bytes} >= 512 * 2048, '... heap_bytes: the ledger at least');
				if ($how->[0] eq '--compact') {
					ok($j->{size_bytes} < 8 << 20 && $j->{size_bytes} % 4096 == 0,
					   '... --compact: smaller than the source, whole pages');
				} else {
					is($j->{size_bytes}, 8 << 20, "... size_bytes: the source's");
				}
			} else {
				like($out, qr/^copied \Q$src\E to \Q$dst\E: 8 MiB, heap \S+ \S+ in use, \d+ pass/,
				     '... says what it copied') or diag($out);
			}
			is(ledger_sum($dst), "512000 512\n", '... and holds the exact total');
			my $dj = json_info($dst);
			companions_of($dj->{uuid});
			isnt($dj->{uuid}, $sj->{uuid}, '... a region of its own (new uuid)');
			is($dj->{layout}{heap_off}, $sj->{layout}{heap_off}, '... its heap where the source\'s is');
			is($dj->{durability}, $sj->{durability}, '... the source\'s durability');
			is($dj->{max_threads}, $sj->{max_threads}, '... and limits');
			is(scalar @{$dj->{processes}}, 0, '... nobody attached');
			(my $path = $dst) =~ s{^shm:}{/dev/shm/};
			is(mode_of($path), 0640, '... the source\'s mode');
			($rc, $out, $err) = pstm('check', $dst);
			is($rc, 0, '... clean for pstm check') or diag($out);
			pstm('rm', $dst);
		}
		my ($wrc, $moves) = writer_stop($w);
		is($wrc, 0, "the writer of the $kind source ends fine");
		ok($moves > 0, "... after $moves transfers meanwhile");
		is(ledger_sum($src), "512000 512\n", '... and the source still holds the total');

		# a paused writer (between transactions): one pass
		$w = writer_start($src);
		syswrite($w->{in}, 'p');
		is(scalar(readline($w->{out}) // ''), "paused\n", '... the writer pauses');
		my $dst = $name->();
		($rc, $out, $err) = pstm('copy', '--json', $src, $dst);
		my $j = json_object($out, "copy of a $kind region whose writer pauses");
		is($j->{passes}, 1, '... one pass');
		is($j->{holds}, 0, '... writers never held back');
		is(ledger_sum($dst), "512000 512\n", '... the exact total');
		pstm('rm', $dst);
		is((writer_stop($w))[0], 0, '... the writer ends fine');

		# refusals: exit 1, one line naming what, nothing made
		my $other = $kind eq 'shm' ? "$fdir/other.region" : 'shm:' . shm_name('cli');
		my @bad = (
			[[$src, $src], 'PSTM_EEXIST', qr/\Q$src\E exists/],
			[['--size', '1M', $src, $name->()], 'PSTM_ETOOSMALL', qr/--size 1 MiB is too small for the heap in use/],
			[[$src, $other], 'PSTM_EINVAL', qr/a copy keeps the heap at its offset/],
			[["$src-missing", $name->()], 'PSTM_ENOENT', qr/region does not exist/],
		);
		push @bad, [['--durable', $src, $name->()], 'PSTM_EINVAL', qr/shm: regions are volatile/]
			if $kind eq 'shm';
		for my $b (@bad) {
			my ($args, $code, $re) = @$b;
			($rc, $out, $err) = pstm('copy', '--json', @$args);
			is($rc, 1, "copy @$args exits 1");
			ok(one_line($err), '... with a one-line message') or diag($err);
			like($err, $re, "... $re") or diag($err);
			is(json_object($out, '... an error document')->{error}{code}, $code, "... $code");
		}
		is(json_info($src)->{uuid}, $sj->{uuid}, '... the source untouched');
		is(scalar(grep { /^\.pstm-new\./ } map { s{.*/}{}r } glob("$fdir/.pstm*")),
		   0, '... no temporary file left');
		pstm('rm', $src);
	}
	# SRC is no region
	my $junk = "$fdir/junk.region";
	open(my $fh, '>', $junk) or die;
	print $fh 'x' x 8192;
	close($fh);
	my ($rc, $out, $err) = pstm('copy', $junk, "$fdir/j2.region");
	is($rc, 1, 'copy of a file that is no region exits 1');
	like($err, qr/not a pstm region/, '... saying so') or diag($err);
	ok(!-e "$fdir/j2.region", '... and makes nothing');
	for my $args (['x'], ['a', 'b', 'c'], ['--compact', '--size', '2M', 'a', 'b'],
		      ['--passes', '0', 'a', 'b'], ['--flush-ms', '5', 'a', 'b'],
		      ['--size', 'lots', 'a', 'b'], ['--bogus', 'a', 'b']) {
		($rc, $out, $err) = pstm('copy', @$args);
		is($rc, 2, "copy @$args is a usage error");
	}
	($rc, $out, $err) = pstm('copy', '--help');
	like($out, qr/^usage: pstm copy SRC DST/, 'copy --help');
}

# --- top: live statistics, read-only ------------------------------------
{
	my $n = 'shm:' . shm_name('cli');
	my ($rc, $out, $err) = pstm('create', '--size', '8M', $n);
	my $w = writer_start($n);
	($rc, $out, $err) = pstm('top', '--interval', '100', '--count', '3', $n);
	is($rc, 0, 'top --count 3 exits 0') or diag($err);
	my @heads = $out =~ /^pstm top \Q$n\E  \S+  interval [\d.]+ s  clock \d+  1 process$/mg;
	is(scalar @heads, 3, '... three refreshes of plain lines (no terminal)') or diag($out);
	my @rows = $out =~ /^\s+0\s+$w->{pid} alive\s+(\d+)/mg;
	is(scalar @rows, 3, '... the writer in each');
	ok(!grep({ $_ == 0 } @rows), '... committing: commits per second above 0') or diag($out);
	like($out, qr/^\s+ENTRY\s+PID STATE\s+COMMIT\/S\s+RO\/S\s+AB-READ\/S\s+AB-LOCK\/S\s+AB-VAL\/S\s+AB-USER\/S\s+ESC\/S\s+REC\/S$/m,
	     '... with its columns');

	($rc, $out, $err) = pstm('top', '--json', '--interval', '100', '--once', $n);
	is($rc, 0, 'top --json --once exits 0') or diag($err);
	is(scalar(split /\n/, $out), 1, '... one JSON line');
	ok((json_object($out, '... a JSON object')->{uri} // '') eq $n, '... of the region');

	($rc, $out, $err) = pstm('top', '--json', '--interval', '100', '--count', '2', $n);
	is($rc, 0, 'top --json --count 2 exits 0') or diag($err);
	my @docs = split /\n/, $out;
	is(scalar @docs, 2, '... two lines');
	my @j = map { json_object($_, '... each a JSON object') } @docs;
	my @p = map { (grep { $_->{pid} == $w->{pid} } @{$_->{processes} // []})[0] // {} } @j;
	is($j[1]{uri}, $n, '... uri');
	ok($p[1]{commits_per_s} > 0, '... commits_per_s above 0');
	my $delta = ($p[1]{commits} // 0) - ($p[0]{commits} // 0);
	ok(abs($p[1]{commits_per_s} * $j[1]{interval_s} - $delta) <= 0.01 * $delta + 1,
	   '... the rate: the commits between two refreshes over their interval')
		or diag("$p[1]{commits_per_s} * $j[1]{interval_s} vs $delta");
	ok(exists $p[1]{$_} && exists $p[1]{"${_}_per_s"}, "... $_ and ${_}_per_s")
		for qw(commits commits_ro aborts_read aborts_lock aborts_validate aborts_user
		       escalations recoveries);
	ok(exists $j[1]{total_per_s}{commits}, '... total_per_s');

	syswrite($w->{in}, 'p');
	is(scalar(readline($w->{out}) // ''), "paused\n", 'the writer pauses');
	($rc, $out, $err) = pstm('top', '--json', '--interval', '100', '--count', '1', $n);
	my $stopped = (grep { $_->{pid} == $w->{pid} } @{json_object($out, 'top of a paused writer')->{processes} // []})[0] // {};
	is($stopped->{commits_per_s}, 0, '... commits nothing per second');
	ok($stopped->{commits} > 0, '... its total stays');
	is((writer_stop($w))[0], 0, 'the writer ends fine');
	is(scalar @{json_info($n)->{processes}}, 0, 'top attached nothing (no process left)');

	# a file region nobody has open since its runtime went: no runtime
	my $f = "$tmp/top.region";
	($rc, $out, $err) = pstm('create', '--size', '2M', $f);
	my ($rt) = companions_of(json_info($f)->{uuid});
	ok($rt && unlink($rt), 'remove the runtime of a file region');
	($rc, $out, $err) = pstm('top', '--count', '1', '--interval', '10', $f);
	is($rc, 0, 'top of a region without runtime exits 0') or diag($err);
	like($out, qr/^pstm top \Q$f\E  \S+  interval [\d.]+ s  no runtime: nobody has the region open$/m,
	     '... saying so') or diag($out);
	($rc, $out, $err) = pstm('top', '--json', '--count', '1', '--interval', '10', $f);
	my $jt = json_object($out, '... --json: one object');
	is($jt->{runtime_found}, JSON::PP::false, '... runtime_found false');
	is_deeply($jt->{processes}, [], '... no processes');
	ok(!-e $rt, '... and top built none');
	pstm('rm', $f);

	($rc, $out, $err) = pstm('top', '--count', '1', '--interval', '10', "$n-missing");
	is($rc, 1, 'top of a missing region exits 1');
	ok(one_line($err), '... with a one-line message');
	for my $args (['--count', '0', $n], ['--interval', '5', $n], [], [$n, $n]) {
		($rc, $out, $err) = pstm('top', @$args);
		is($rc, 2, "top @$args is a usage error");
	}
	pstm('rm', $n);
}

# --- ls and gc ---------------------------------------------------------
{
	my $dir = "$tmp/ls";
	mkdir($dir) or die;
	my ($rc, $out, $err);
	for my $r (['kept.region'], ['gone.region'], ['inuse.region'],
		   ['relaxed.region', '--relaxed']) {
		my ($name, @o) = @$r;
		($rc, $out, $err) = pstm('create', '--size', '2M', @o, "$dir/$name");
		is($rc, 0, "create $name") or diag($err);
	}
	my $shm = shm_name('cli');
	($rc) = pstm('create', '--size', '2M', "shm:$shm");
	is($rc, 0, 'create a shm region to list');
	my %uuid = map { $_ => json_info("$dir/$_.region")->{uuid} } qw(kept gone inuse relaxed);
	open(my $fh, '>', "$dir/notes.txt") or die;
	print $fh "not a region\n";
	close($fh);

	my $h = hold("$dir/inuse.region");
	($rc, $out, $err) = pstm('ls', $dir);
	is($rc, 0, 'ls DIR exits 0') or diag($err);
	like($out, qr/^regions in \Q$dir\E: 4$/m, 'ls: 4 regions in DIR (not the text file)');
	like($out, qr/^\s+\Q$dir\E\/kept\.region\s+durable\s+2097152\s+0\s+runtime$/m,
	     'ls: a durable region, its size, no process, its runtime');
	like($out, qr/^\s+\Q$dir\E\/inuse\.region\s+durable\s+2097152\s+1\s+runtime$/m,
	     'ls: the process attached to inuse.region');
	like($out, qr/^\s+\Q$dir\E\/relaxed\.region\s+relaxed\s+2097152\s+0\s+runtime, working copy$/m,
	     'ls: a relaxed region with its working copy');
	like($out, qr/^\s+shm:\Q$shm\E\s+volatile\s+2097152\s+0\s+runtime inside$/m,
	     'ls: the shm region, found in /dev/shm');
	like($out, qr/^companions in \/dev\/shm: \d+$/m, 'ls: the companions section');
	my ($krt) = companions_of($uuid{kept});
	like($out, qr/^\s+\Q$krt\E  runtime, \d+ bytes, 0 processes, kept; region \S+kept\.region$/m,
	     'ls: a companion whose region is there is kept');
	unlike($out, qr/notes\.txt/, 'ls: a file that is no region is not listed');

	# the region of one companion deleted behind pstm's back; the region
	# of another deleted while a process is still attached
	unlink("$dir/gone.region") or die;
	unlink("$dir/inuse.region") or die;
	($rc, $out, $err) = pstm('ls', '--json', $dir);
	is($rc, 0, 'ls --json exits 0') or diag($err);
	my $j = json_object($out, 'ls --json prints a JSON object');
	is($j->{dir}, $dir, 'ls --json: dir');
	my %reg = map { $_->{path} => $_ } @{$j->{regions} // []};
	is(scalar(grep { $_->{path} =~ /^\Q$dir\E\// } @{$j->{regions} // []}), 2,
	   'ls --json: the 2 regions left in DIR');
	my $kr = $reg{"$dir/kept.region"} // {};
	is($kr->{durability}, 'durable', 'ls --json: durability');
	is($kr->{size_bytes}, 2 << 20, 'ls --json: size_bytes');
	is($kr->{processes}, 0, 'ls --json: processes');
	is($kr->{uuid}, $uuid{kept}, 'ls --json: uuid');
	is($kr->{runtime}, $krt, 'ls --json: the runtime companion');
	is($kr->{working_copy}, undef, 'ls --json: no working copy (durable)');
	my $rr = $reg{"$dir/relaxed.region"} // {};
	is($rr->{working_copy}, (companions_of($uuid{relaxed}, 'wc'))[0],
	   'ls --json: the working copy of the relaxed region');
	is($reg{"/dev/shm/$shm"}{uri}, "shm:$shm", 'ls --json: a shm region, by its uri');
	is($reg{"/dev/shm/$shm"}{runtime}, 'inside', '... runtime inside');
	my %comp = map { $_->{path} => $_ } @{$j->{companions} // []};
	my ($grt) = companions_of($uuid{gone});
	my ($irt) = companions_of($uuid{inuse});
	is($comp{$krt}{state}, 'kept', 'ls --json: kept');
	like($comp{$krt}{region} // '', qr{/kept\.region$}, 'ls --json: its region\'s path');
	is($comp{$krt}{region_present}, JSON::PP::true, '... present');
	is($comp{$grt}{state}, 'orphan', 'ls --json: the deleted region\'s companion is an orphan');
	is($comp{$grt}{region_present}, JSON::PP::false, '... its region is not present');
	is($comp{$grt}{processes}, 0, '... nobody uses it');
	is($comp{$irt}{state}, 'in use', 'ls --json: the attached one is in use');
	is($comp{$irt}{processes}, 1, '... by 1 process');
	is($comp{$irt}{kind}, 'runtime', '... kind runtime');

	# gc: only what is orphaned goes
	($rc, $out, $err) = pstm('gc', '--dry-run', '--json');
	is($rc, 0, 'gc --dry-run --json exits 0') or diag($err);
	$j = json_object($out, 'gc --dry-run --json prints a JSON object');
	is($j->{dry_run}, JSON::PP::true, 'gc --json: dry_run');
	my %would = map { $_->{path} => 1 } @{$j->{removed} // []};
	ok($would{$grt}, 'gc --dry-run: would remove the orphan');
	ok(!$would{$krt} && !$would{$irt}, '... not the kept nor the used one');
	ok(-e $grt, 'gc --dry-run removed nothing');
	($rc, $out, $err) = pstm('gc');
	is($rc, 0, 'gc exits 0') or diag($err);
	like($out, qr/^removed \Q$grt\E  runtime/m, 'gc names what it removed');
	like($out, qr/^gc: removed \d+ companions? \(\d+ bytes\), kept \d+$/m, 'gc sums up');
	ok(!-e $grt, 'gc removed the orphan');
	ok(-e $krt && -e $irt, '... kept the others');
	ok(companions_of($uuid{relaxed}, 'wc') == 1, '... and the working copy of a present region');
	is(release($h), 0, 'the process attached to the deleted region closes fine');
	($rc, $out, $err) = pstm('gc', '--json');
	$j = json_object($out, 'gc --json prints a JSON object');
	is($j->{dry_run}, JSON::PP::false, 'gc --json: dry_run false');
	ok((grep { $_->{path} eq $irt } @{$j->{removed} // []}),
	   'gc --json: the runtime of the deleted region went once nobody used it');
	ok(!-e $irt, '... gone');
	ok(-e $krt, '... the kept one is still there');
	for my $n (qw(kept relaxed)) {
		($rc) = pstm('rm', "$dir/$n.region");
		is($rc, 0, "rm $n.region");
	}
	($rc) = pstm('rm', "shm:$shm");
	is($rc, 0, 'rm the shm region');

	($rc, $out, $err) = pstm('ls', "$tmp/nonexistent");
	is($rc, 1, 'ls of a missing directory exits 1');
	ok(one_line($err), '... with a one-line error') or diag($err);

	# --pretty: ls and gc too, the same document indented; an error
	# document like every command's (the directory as its uri)
	($rc, $out, $err) = pstm('ls', '--pretty', $dir);
	is($rc, 0, 'ls --pretty exits 0') or diag($err);
	ok(($out =~ tr/\n//) > 2, '... indented over several lines');
	is(json_object($out, '... one JSON object')->{dir}, $dir, '... of DIR');
	($rc, $out, $err) = pstm('gc', '--dry-run', '--pretty');
	is($rc, 0, 'gc --dry-run --pretty exits 0') or diag($err);
	ok(($out =~ tr/\n//) > 2, '... indented over several lines');
	is(json_object($out, '... one JSON object')->{dry_run}, JSON::PP::true, '... dry_run');
	for my $style ('--json', '--pretty') {
		($rc, $out, $err) = pstm('ls', $style, "$tmp/nonexistent");
		is($rc, 1, "ls $style of a missing directory exits 1");
		my $e = json_object($out, '... one error document');
		is($e->{uri}, "$tmp/nonexistent", '... naming the directory');
		is($e->{error}{code}, 'PSTM_ENOENT', '... PSTM_ENOENT');
	}
}

# everything made here is gone, companions included (the suite must not
# leave pstm.rt.* segments behind)
is(scalar(map { glob("/dev/shm/pstm.rt.$_.*"), glob("/dev/shm/pstm.wc.$_.*") } @uuids), 0,
   'no companion of a region made here is left in /dev/shm');

done_testing();

END {
	# remove whatever a failed check left behind (not our exit status)
	my $keep = $?;
	unlink(glob("/dev/shm/pstm.rt.$_.*"), glob("/dev/shm/pstm.wc.$_.*")) for @uuids;
	$? = $keep;
}
