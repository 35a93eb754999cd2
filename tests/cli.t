#!/usr/bin/perl
# cli.t - the pstm admin CLI: create / info / rm / ls / gc on shm: and file regions,
# exit statuses (0 ok, 1 failed, 2 usage) and one-line error messages.
# Runs $PSTM_BIN/pstm (default build/pstm); cleans up everything it makes.
use strict;
use warnings;
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
for my $cmd (qw(create info rm ls gc)) {
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
like($out, qr/\b67108864\b/, 'info shows the size in bytes');

my $j = json_info("shm:$a");
is($j->{uuid}, $text_uuid, 'json uuid matches the text output');
like($j->{uuid} // '', qr/\A$uuid_re\z/, 'json uuid is a uuid');
is($j->{size_bytes}, 64 << 20, 'json size_bytes');
is($j->{durability}, 'volatile', 'json durability: shm defaults to volatile');
is(ref $j->{processes}, 'ARRAY', 'json processes is an array');
ok(@{$j->{processes} // []} >= 1, 'the info process itself is listed');
ok((grep { ref $_ eq 'HASH' && ($_->{pid} // 0) > 0 } @{$j->{processes} // []}),
   'process entries carry a pid');
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

# too small is an operation failure, not a usage error
($rc, $out, $err) = pstm('create', '--size', '4K', "shm:$u");
is($rc, 1, 'create --size 4K (too small) exits 1');
ok(one_line($err), '... with a one-line error') or diag("stderr: '$err'");
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
	is($j->{removed}, JSON::PP::false, '... removed: false');
	like($j->{error} // '', qr/not a pstm region/, '... and the error');
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
