# PstmTest.pm - what the TAP scripts (cli.t, crashtest.t, install.t) share:
# where the build is, a temporary folder, running a program with its exit
# status and output captured, unique shm: names removed at exit (and the
# /dev/shm companions of regions left in temp folders), and checking that
# a program printed one JSON object.
package PstmTest;
use strict;
use warnings;
use Exporter qw(import);
use File::Temp qw(tempdir);
use JSON::PP qw(decode_json);
use POSIX qw(_exit);
use Test::More;

our @EXPORT = qw(build_dir temp_dir run_program run_program_as slurp shm_name
		 json_object);

# the build folder the tests run from: $PSTM_BIN (make test sets it)
sub build_dir { return $ENV{PSTM_BIN} // 'build'; }

# a new folder pstm-TAG-XXXXXX, removed at exit: under $TMPDIR, or with
# tmpfs => 1 in /dev/shm (where file regions and their images are cheap).
# The companions in /dev/shm of the regions left in it go too (see END).
my @temp_dirs;

sub temp_dir {
	my ($tag, %opt) = @_;
	my @where = !$opt{tmpfs} ? (TMPDIR => 1)
		  : (DIR => (-d '/dev/shm' ? '/dev/shm' : '/tmp'));
	my $d = tempdir("pstm-$tag-XXXXXX", @where, CLEANUP => 1);
	push @temp_dirs, $d;
	return $d;
}

# the uuids (hex) of the region files under @dirs: their superblock's
# magic, then the uuid at offset 16
sub region_uuids {
	my @dirs = @_;
	my @uuids;
	while (defined(my $d = shift @dirs)) {
		opendir(my $dh, $d) or next;
		for my $e (grep { !/^\.\.?$/ } readdir($dh)) {
			my $p = "$d/$e";
			next if -l $p;
			if (-d _) { push @dirs, $p; next; }
			next unless -f _ && open(my $fh, '<:raw', $p);
			my $sb = '';
			read($fh, $sb, 32);
			close($fh);
			push @uuids, unpack('H32', substr($sb, 16, 16))
				if length($sb) == 32 && substr($sb, 0, 8) eq 'PSTMREG1';
		}
		closedir($dh);
	}
	return @uuids;
}

sub slurp {
	my ($f) = @_;
	open(my $fh, '<', $f) or return '';
	local $/;
	my $s = <$fh>;
	return $s // '';
}

# where run_program captures output; made on first use
my $capture;

# run_program([\%env,] PROG, ARGS...): run PROG with ARGS (and %env added
# to its environment); returns (exit status or 128+signal, stdout, stderr)
sub run_program {
	my ($env, $prog, @args) = ref $_[0] eq 'HASH' ? @_ : ({}, @_);
	return spawn($env, undef, $prog, @args);
}

# run_program_as(UID, PROG, ARGS...): the same as user UID, group UID and
# no other groups (undef: as ourselves), which needs root
sub run_program_as {
	my ($uid, $prog, @args) = @_;
	return spawn({}, $uid, $prog, @args);
}

sub spawn {
	my ($env, $uid, $prog, @args) = @_;
	$capture //= temp_dir('out');
	my ($out, $err) = ("$capture/stdout", "$capture/stderr");
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		@ENV{keys %$env} = values %$env;
		open(STDOUT, '>', $out) or _exit(126);
		open(STDERR, '>', $err) or _exit(126);
		if (defined $uid) {
			$) = "$uid $uid"; # and the supplementary groups
			POSIX::setgid($uid) or _exit(125);
			POSIX::setuid($uid) or _exit(125);
		}
		exec($prog, @args) or _exit(127);
	}
	waitpid($pid, 0);
	my $st = $?;
	my $rc = $st & 127 ? 128 + ($st & 127) : $st >> 8;
	return ($rc, slurp($out), slurp($err));
}

# "pstm-test-TAG-<pid>-<n>", unique per call; the segment (and a "-2"
# sibling a test may have named) is removed at exit if a failure left it
my (@shm_names, $seq);

sub shm_name {
	my ($tag) = @_;
	my $n = "pstm-test-$tag-$$-" . $seq++;
	push @shm_names, $n;
	return $n;
}

# one test, NAME: TEXT decodes as a JSON object; returns it ({} if not)
sub json_object {
	my ($text, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $j = eval { decode_json($text) };
	my $why = $@;
	ok($j && ref $j eq 'HASH', $name) or diag("parse error: $why\noutput: $text");
	return $j && ref $j eq 'HASH' ? $j : {};
}

END {
	# not our exit status: the script's
	my $keep = $?;
	unlink("/dev/shm/$_", "/dev/shm/$_-2") for @shm_names;
	# a region a failed test left in a temp folder (pstm-crashtest keeps
	# one for inspection) goes with the folder, after this: its
	# companions in /dev/shm must not stay behind as orphans
	unlink(glob("/dev/shm/pstm.rt.$_*"), glob("/dev/shm/pstm.wc.$_*"))
		for region_uuids(@temp_dirs);
	$? = $keep;
}

1;
