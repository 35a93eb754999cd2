#!/usr/bin/perl
# kv.t - pstm-kv, the Redis-protocol server: every command through
# redis-cli, binary-safe values and hostile input through raw sockets,
# MULTI/EXEC atomicity across 2 server processes, a worker killed with
# SIGKILL (its clients see EOF, the others keep going, the restarted one
# serves the same keyspace), a durable file region across a restart, and
# SIGTERM.  127.0.0.1 only; every server it starts is stopped at exit.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More;
use lib 'tests';
use PstmTest;

my $bin = build_dir() . '/pstm-kv';
plan skip_all => "$bin not built" unless -x $bin;
my $cli = `command -v redis-cli 2>/dev/null`;
chomp $cli;
plan skip_all => 'redis-cli not installed (scripts/install-deps.sh)' unless $cli;

my $tmp = temp_dir('kv', tmpfs => 1);
my %servers;   # pid => log file
my $nlog = 0;

END {
	my $keep = $?;
	for my $pid (keys %servers) {
		kill('TERM', $pid);
	}
	my $t0 = time;
	while (%servers && time - $t0 < 10) {
		for my $pid (keys %servers) {
			delete $servers{$pid} if waitpid($pid, WNOHANG) != 0;
		}
		sleep(0.05);
	}
	kill('KILL', $_), waitpid($_, 0) for keys %servers;
	$? = $keep;
}

sub free_port {
	my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
				      LocalPort => 0, Proto => 'tcp') or die "socket: $!";
	my $p = $s->sockport;
	close($s);
	return $p;
}

sub connect_to {
	my ($port) = @_;
	return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
				     Proto => 'tcp', Timeout => 5);
}

# send bytes, read until the reply looks complete or $wait seconds pass
sub raw {
	my ($port_or_sock, $bytes, $wait) = @_;
	my $s = ref $port_or_sock ? $port_or_sock : connect_to($port_or_sock);
	return undef unless $s;
	syswrite($s, $bytes) if length $bytes;
	return read_reply($s, $wait // 2);
}

sub read_reply {
	my ($s, $wait) = @_;
	my $sel = IO::Select->new($s);
	my $got = '';
	my $t0 = time;
	while (time - $t0 < $wait) {
		last unless $sel->can_read(0.05);
		my $n = sysread($s, my $buf, 65536);
		last unless $n;
		$got .= $buf;
		last if $got =~ /\r\n\z/ && complete($got);
	}
	return $got;
}

# whether $r holds at least one whole RESP reply
sub complete {
	my ($r) = @_;
	my $pos = 0;
	return parse_one($r, \$pos);
}

sub parse_one {
	my ($r, $pos) = @_;
	my $e = index($r, "\r\n", $$pos);
	return 0 if $e < 0;
	my $t = substr($r, $$pos, 1);
	my $v = substr($r, $$pos + 1, $e - $$pos - 1);
	$$pos = $e + 2;
	if ($t eq '$') {
		return 1 if $v < 0;
		return 0 if length($r) < $$pos + $v + 2;
		$$pos += $v + 2;
	} elsif ($t eq '*') {
		for (1 .. $v) { return 0 unless parse_one($r, $pos); }
	}
	return 1;
}

sub resp {
	my $s = '*' . scalar(@_) . "\r\n";
	$s .= '$' . length($_) . "\r\n$_\r\n" for @_;
	return $s;
}

# start pstm-kv with @args; returns (pid, log file) once it answers PING
sub start_server {
	my ($port, @args) = @_;
	my $log = "$tmp/server-" . $nlog++ . '.log';
	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		open(STDOUT, '>', '/dev/null');
		open(STDERR, '>', $log);
		exec($bin, '--port', $port, @args) or POSIX::_exit(127);
	}
	$servers{$pid} = $log;
	my $t0 = time;
	while (time - $t0 < 15) {
		my $r = raw($port, "PING\r\n", 0.5);
		return ($pid, $log) if defined $r && $r eq "+PONG\r\n";
		last if waitpid($pid, WNOHANG) == $pid and delete $servers{$pid};
		sleep(0.05);
	}
	diag(slurp($log));
	return (undef, $log);
}

sub stop_server {
	my ($pid) = @_;
	kill('TERM', $pid);
	waitpid($pid, 0);
	my $st = $?;
	delete $servers{$pid};
	return $st;
}

my $port;
sub rc { my ($rc, $out, $err) = run_program($cli, '-p', $port, @_); chomp $out; return $out; }
sub rc_raw { return rc('--no-raw', @_); }

# ---------------------------------------------------------------- options
my ($rc, $out, $err) = run_program($bin, '--help');
is($rc, 0, '--help exits 0');
like($out, qr/usage: pstm-kv --region URI/, '--help prints usage');
($rc, $out) = run_program($bin, '--version');
like($out, qr/^pstm-kv \d+\.\d+\.\d+$/m, '--version prints the pstm version');
($rc, $out, $err) = run_program($bin, '--port', '1');
is($rc, 2, 'no --region: usage error (2)');
($rc, $out, $err) = run_program($bin, '--region', 'shm:x', '--processes', '0');
is($rc, 2, '--processes 0 refused');

# ---------------------------------------------------------------- commands
my $shm = shm_name('kv');
$port = free_port();
my ($pid, $log) = start_server($port, '--region', "shm:$shm", '--processes', '2');
ok($pid, 'server with 2 processes on shm: answers PING') or BAIL_OUT('no server');

is(rc('PING'), 'PONG', 'PING');
is(rc('PING', 'hello'), 'hello', 'PING message');
is(rc('ECHO', 'a b'), 'a b', 'ECHO');
is(rc('SET', 'k', 'v1'), 'OK', 'SET');
is(rc('GET', 'k'), 'v1', 'GET');
is(rc_raw('GET', 'nokey'), '(nil)', 'GET of a missing key: nil');
is(rc_raw('SET', 'k', 'v2', 'NX'), '(nil)', 'SET NX on an existing key: nil');
is(rc('SET', 'new', 'x', 'NX'), 'OK', 'SET NX on a new key');
is(rc_raw('SET', 'nokey', 'x', 'XX'), '(nil)', 'SET XX on a missing key: nil');
is(rc('SET', 'k', 'v3', 'XX'), 'OK', 'SET XX on an existing key');
is(rc('GET', 'k'), 'v3', '... replaced');
is(rc('SET', 'tmp', 'x', 'PX', '150'), 'OK', 'SET PX');
is(rc('GET', 'tmp'), 'x', '... there before it expires');
is(rc('SET', 'tmp2', 'x', 'EX', '100'), 'OK', 'SET EX');
sleep(0.3);
is(rc_raw('GET', 'tmp'), '(nil)', '... gone after 150 ms');
is(rc('EXISTS', 'tmp'), '0', 'an expired key does not EXIST');
is(rc('GET', 'tmp2'), 'x', 'an EX 100 key is still there');
like(rc('SET', 'k', 'v', 'EX', '0'), qr/invalid expire time/, 'SET EX 0 refused');
like(rc('SET', 'k', 'v', 'EX', 'abc'), qr/invalid expire time/, 'SET EX abc refused');
like(rc('SET', 'k', 'v', 'BOGUS'), qr/syntax error/, 'SET with a bad option: syntax error');
is(rc('GETSET', 'k', 'v4'), 'v3', 'GETSET returns the old value');
is(rc('GET', 'k'), 'v4', '... and sets the new one');
is(rc('DEL', 'k', 'new', 'nokey'), '2', 'DEL counts the keys it removed');
is(rc('SET', 'n', '10'), 'OK', 'SET a number');
is(rc('INCR', 'n'), '11', 'INCR');
is(rc('INCRBY', 'n', '-20'), '-9', 'INCRBY negative');
is(rc('DECR', 'n'), '-10', 'DECR');
is(rc('DECRBY', 'n', '5'), '-15', 'DECRBY');
is(rc('INCR', 'fresh'), '1', 'INCR of a missing key starts at 0');
rc('SET', 's', 'abc');
like(rc('INCR', 's'), qr/not an integer/, 'INCR of a non-number: error');
like(rc('INCRBY', 'n', 'x'), qr/not an integer/, 'INCRBY by a non-number: error');
rc('SET', 'big', '9223372036854775807');
like(rc('INCR', 'big'), qr/overflow/, 'INCR past 2^63-1: overflow error');
is(rc('APPEND', 's', 'def'), '6', 'APPEND returns the new length');
is(rc('GET', 's'), 'abcdef', '... appended');
is(rc('APPEND', 'newapp', 'xy'), '2', 'APPEND to a missing key');
is(rc('STRLEN', 's'), '6', 'STRLEN');
is(rc('STRLEN', 'nokey'), '0', 'STRLEN of a missing key');
is(rc('MSET', 'a', '1', 'b', '2', 'c', '3'), 'OK', 'MSET');
is(rc_raw('MGET', 'a', 'nokey', 'c'), qq{1) "1"\n2) (nil)\n3) "3"}, 'MGET');
like(rc('MSET', 'a', '1', 'b'), qr/wrong number of arguments/, 'MSET with an odd count');
is(rc('MSETNX', 'a', '9', 'd', '4'), '0', 'MSETNX with an existing key: 0');
is(rc_raw('GET', 'd'), '(nil)', '... and nothing set');
is(rc('MSETNX', 'd', '4', 'e', '5'), '1', 'MSETNX of new keys: 1');
is(rc('TYPE', 'a'), 'string', 'TYPE string');
is(rc('TYPE', 'nokey'), 'none', 'TYPE none');
is(rc('EXISTS', 'a', 'b', 'nokey', 'a'), '3', 'EXISTS counts (repeats too)');
rc('FLUSHDB');
is(rc('DBSIZE'), '0', 'FLUSHDB empties, DBSIZE 0');
rc('MSET', 'user:1', 'a', 'user:2', 'b', 'user:10', 'c', 'other', 'd');
is(rc('DBSIZE'), '4', 'DBSIZE');
is(join(',', sort split /\n/, rc('KEYS', 'user:*')), 'user:1,user:10,user:2', 'KEYS user:*');
is(join(',', sort split /\n/, rc('KEYS', 'user:?')), 'user:1,user:2', 'KEYS user:?');
is(join(',', sort split /\n/, rc('KEYS', '[ou]*[^0-9]')), 'other', 'KEYS with classes');
my (%seen, $cursor);
$cursor = 0;
my $rounds = 0;
do {
	my @r = split /\n/, rc('SCAN', $cursor, 'COUNT', '1');
	$cursor = shift @r;
	$seen{$_}++ for @r;
} while ($cursor ne '0' && ++$rounds < 20);
is(join(',', sort keys %seen), 'other,user:1,user:10,user:2', 'SCAN with COUNT 1 walks every key');
is(join(',', sort grep { $_ ne '0' } split /\n/, rc('SCAN', '0', 'MATCH', 'user:1*', 'COUNT', '100')),
   'user:1,user:10', 'SCAN MATCH');
like(rc('NOSUCHCMD', 'x'), qr/unknown command 'NOSUCHCMD'/, 'an unknown command: error');
like(rc('GET'), qr/wrong number of arguments for 'get'/, 'wrong arity: error');
like(rc('SELECT', '1'), qr/out of range/, 'SELECT 1 refused (one database)');

# MULTI/EXEC/DISCARD on one connection (raw: redis-cli runs one command)
my $s = connect_to($port);
is(raw($s, resp('MULTI')), "+OK\r\n", 'MULTI');
is(raw($s, resp('SET', 'm', '1')), "+QUEUED\r\n", 'queued');
is(raw($s, resp('INCR', 'm')), "+QUEUED\r\n", 'queued');
is(raw($s, resp('GET', 'm')), "+QUEUED\r\n", 'queued');
is(raw($s, resp('EXEC')), "*3\r\n+OK\r\n:2\r\n\$1\r\n2\r\n", 'EXEC: every reply in one array');
raw($s, resp('MULTI'));
raw($s, resp('SET', 'm', '100'));
is(raw($s, resp('DISCARD')), "+OK\r\n", 'DISCARD');
is(rc('GET', 'm'), '2', '... and nothing of it ran');
is(raw($s, resp('EXEC')), "-ERR EXEC without MULTI\r\n", 'EXEC without MULTI');
raw($s, resp('MULTI'));
like(raw($s, resp('NOPE')), qr/^-ERR unknown command/, 'an unknown command in MULTI');
like(raw($s, resp('EXEC')), qr/^-EXECABORT/, '... aborts the EXEC');
is(raw($s, "PING\r\n"), "+PONG\r\n", 'inline command (telnet style)');
is(raw($s, "SET  inl   'v'\r\nGET inl\r\n"), "+OK\r\n\$3\r\n'v'\r\n", 'inline: pipelined, spaces');
# binary-safe keys and values
my $bkey = "k\0\r\n\xff";
my $bval = join('', map { chr } 0 .. 255) x 4;
is(raw($s, resp('SET', $bkey, $bval)), "+OK\r\n", 'SET a binary key and value');
is(raw($s, resp('GET', $bkey)), '$' . length($bval) . "\r\n$bval\r\n", 'GET it back byte for byte');
is(raw($s, resp('SET', '', '')), "+OK\r\n", 'empty key and value');
is(raw($s, resp('GET', '')), "\$0\r\n\r\n", '... round trip');
my $large = 'x' x (400 * 1024);
is(raw($s, resp('SET', 'large', $large), 5), "+OK\r\n", 'a 400 KiB value');
is(rc('STRLEN', 'large'), 409600, '... stored whole');
close($s);

# ---------------------------------------------------------------- hostile input
like(raw($port, "*2\r\n\$-5\r\nab\r\n"), qr/^-ERR Protocol error: invalid bulk length/, 'negative bulk length: error');
like(raw($port, "*1\r\n\$999999999\r\n"), qr/^-ERR Protocol error: invalid bulk length/, 'a huge bulk length: error');
like(raw($port, "*1\r\n\$524289\r\n"), qr/^-ERR Protocol error: invalid bulk length/, 'bulk length just over 512 KiB: error');
like(raw($port, "*abc\r\n"), qr/^-ERR Protocol error: invalid multibulk length/, 'a non-numeric array length: error');
like(raw($port, "*-7\r\n"), qr/^-ERR Protocol error/, 'a negative array length: error');
like(raw($port, "*99999999999\r\n"), qr/^-ERR Protocol error/, 'a huge array length: error');
like(raw($port, "*1\r\n+PING\r\n"), qr/^-ERR Protocol error: expected '\$'/, 'a non-bulk element: error');
like(raw($port, "*1\r\n\$4\r\nPINGxx"), qr/^-ERR Protocol error: bulk not followed by CRLF/, 'bulk without CRLF: error');
like(raw($port, '*' . ('1' x 40)), qr/^-ERR Protocol error/, 'a length line with no end: error');
like(raw($port, 'x' x (70 * 1024)), qr/^-ERR Protocol error: too big inline request/, 'a 70 KiB inline line: error');
{
	my $g = connect_to($port);
	my $got = raw($g, "PING\r\n*1\r\n\$4\r\nPING\r\n\x00\x01garbage*\$\$\r\n*1\r\n\$4\r\nPING\r\n*1\r\n\$x\r\n");
	$got .= read_reply($g, 1);
	like($got, qr/^\+PONG\r\n\+PONG\r\n-ERR unknown command '\?\?garbage\*\$\$'\r\n\+PONG\r\n-ERR Protocol error/,
	     'pipelined garbage: each good request answered, garbage lines refused, then a protocol error');
	my $sel = IO::Select->new($g);
	ok($sel->can_read(2) && !sysread($g, my $b, 10), '... and the connection closed');
}
{
	my $t = connect_to($port);
	syswrite($t, "*3\r\n\$3\r\nSET\r\n\$1\r\nt\r\n\$100\r\nabc");
	close($t); # a truncated frame, then gone
}
{
	my $h = connect_to($port);
	my $junk = join('', map { chr(int(rand(256))) } 1 .. 20000);
	syswrite($h, $junk);
	read_reply($h, 1);
	close($h);
}
is(rc('PING'), 'PONG', 'the server survives all of that');
# a client sending a request 1 byte at a time does not hold up others
{
	my $slow = connect_to($port);
	my $req = resp('SET', 'slow', 'done');
	my $t0 = time;
	my $others_ok = 1;
	for my $i (0 .. length($req) - 1) {
		syswrite($slow, substr($req, $i, 1));
		if ($i % 5 == 0) {
			my $q0 = time;
			$others_ok &&= rc('PING') eq 'PONG' && time - $q0 < 1;
		}
		sleep(0.1);
	}
	is(read_reply($slow, 2), "+OK\r\n", 'a request sent a byte at a time is answered');
	ok($others_ok, '... and other clients were served promptly meanwhile');
}
# many idle connections
{
	my @idle;
	for (1 .. 1000) {
		my $c = connect_to($port) or last;
		push @idle, $c;
	}
	is(scalar(@idle), 1000, '1,000 idle connections');
	is(rc('PING'), 'PONG', '... and a new one is still served');
	is(raw($idle[0], "PING\r\n"), "+PONG\r\n", '... and an idle one too');
	close($_) for @idle;
}

# ---------------------------------------------------------------- atomicity
# 4 clients, each 250 MULTI { INCR c; INCR d } EXEC, and a reader that
# sees c == d in every MULTI { GET c; GET d } it runs
rc('DEL', 'c', 'd');
my @kids;
for my $k (1 .. 4) {
	my $kid = fork() // die;
	if ($kid == 0) {
		my $c = connect_to($port) or POSIX::_exit(1);
		for (1 .. 250) {
			my $r = raw($c, resp('MULTI') . resp('INCR', 'c') . resp('INCR', 'd') . resp('EXEC'), 5);
			$r .= read_reply($c, 5) until $r =~ /\*2\r\n:\d+\r\n:\d+\r\n\z/ or !length $r;
		}
		POSIX::_exit(0);
	}
	push @kids, $kid;
}
my ($reads, $torn, $kid_fail) = (0, 0, 0);
my %running = map { $_ => 1 } @kids;
{
	my $c = connect_to($port);
	while (1) {
		for my $k (keys %running) {
			next unless waitpid($k, WNOHANG) == $k;
			$kid_fail++ if $?;
			delete $running{$k};
		}
		my $alive = %running;
		my $r = raw($c, resp('MULTI') . resp('GET', 'c') . resp('GET', 'd') . resp('EXEC'), 5);
		$r .= read_reply($c, 5) until $r =~ /EXEC|\*2\r\n(\$-1\r\n|\$\d+\r\n\d+\r\n){2}\z/ or !length $r;
		my @v = $r =~ /\*2\r\n(?:\$-1|\$\d+\r\n(\d+))\r\n(?:\$-1|\$\d+\r\n(\d+))\r\n\z/;
		$reads++;
		$torn++ if ($v[0] // 0) != ($v[1] // 0);
		last unless $alive;
	}
}
is($kid_fail, 0, '4 concurrent MULTI/EXEC clients finished');
is(rc('GET', 'c'), '1000', 'c is exactly 4 x 250');
is(rc('GET', 'd'), '1000', 'd is exactly 4 x 250');
is($torn, 0, "no reader ever saw c != d ($reads reads)");

# ---------------------------------------------------------------- SIGKILL a worker
my @workers = slurp($log) =~ /worker \d started \(pid (\d+)\)/g;
is(scalar(@workers), 2, 'two worker processes started');
my %on;  # worker pid => [connections]
for (1 .. 40) {
	my $c = connect_to($port);
	my ($wp) = raw($c, resp('INFO')) =~ /process_id:(\d+)/;
	push @{ $on{$wp} }, $c if $wp;
}
ok(@{ $on{$workers[0]} // [] } && @{ $on{$workers[1]} // [] },
   'connections landed on both workers');
# acknowledged writes through the doomed worker
my $victim = $workers[0];
my $acked = 0;
my $wc = $on{$victim}[0];
for my $i (1 .. 200) {
	last unless raw($wc, resp('SET', "ack:$i", "v$i")) eq "+OK\r\n";
	$acked = $i;
}
kill('KILL', $victim);
sleep(0.3);
my $closed = 0;
for my $c (@{ $on{$victim} }) {
	my $r = raw($c, resp('PING'), 1);
	$closed++ if !defined $r || $r eq '';
}
is($closed, scalar @{ $on{$victim} }, "every connection to the killed worker closed ($closed)");
my $alive = 0;
$alive += (raw($_, resp('PING')) // '') eq "+PONG\r\n" for @{ $on{$workers[1]} };
is($alive, scalar @{ $on{$workers[1]} }, 'every connection to the other worker still served');
my $t0 = time;
my $newpid;
while (time - $t0 < 10 && !$newpid) {
	($newpid) = grep { $_ != $victim && $_ != $workers[1] }
		    slurp($log) =~ /worker \d started \(pid (\d+)\)/g;
	sleep(0.1);
}
ok($newpid, 'the supervisor restarted the killed worker');
my $rejoined;
for (1 .. 100) {
	my $c = connect_to($port) or next;
	my ($wp) = raw($c, resp('INFO')) =~ /process_id:(\d+)/;
	next unless $wp && $wp == $newpid;
	$rejoined = $c;
	last;
}
ok($rejoined, 'new connections reach the restarted worker');
SKIP: {
	skip 'no connection to the restarted worker', 2 unless $rejoined;
	is(raw($rejoined, resp('GET', 'c')), "\$4\r\n1000\r\n", '... which serves the same keyspace');
	my $lost = 0;
	for my $i (1 .. $acked) {
		$lost++ unless raw($rejoined, resp('GET', "ack:$i")) eq "\$" . length("v$i") . "\r\nv$i\r\n";
	}
	is($lost, 0, "none of the $acked acknowledged writes was lost");
}
close($_) for map { @$_ } values %on;

is(stop_server($pid), 0, 'SIGTERM: the server exits 0');
like(slurp($log), qr/stopped/, '... after stopping its workers');
ok(!kill(0, $workers[1]), '... which are gone');

# ---------------------------------------------------------------- limits
$port = free_port();
($pid, $log) = start_server($port, '--region', "shm:$shm", '--max-clients', '3');
my @few = map { connect_to($port) } 1 .. 3;
raw($_, "PING\r\n") for @few;
like(raw($port, "PING\r\n"), qr/^-ERR max number of clients reached/, '--max-clients 3: a 4th connection is refused');
close($_) for @few;
is(stop_server($pid), 0, 'stopped');

# ---------------------------------------------------------------- durable file region
my $file = "$tmp/kv.region";
$port = free_port();
($pid, $log) = start_server($port, '--region', $file, '--size', '64M');
ok($pid, 'server on a durable file region');
like(slurp($log), qr/\(durable\)/, '... which is durable');
is(rc('SET', 'dur', 'able'), 'OK', 'SET on it');
is(rc('INCRBY', 'cnt', '42'), '42', 'INCRBY on it');
is(stop_server($pid), 0, 'stopped');
($pid, $log) = start_server($port, '--region', $file);
is(rc('GET', 'dur'), 'able', 'after a restart the value is there');
is(rc('GET', 'cnt'), '42', '... and the counter');
is(stop_server($pid), 0, 'stopped');
# the region and its /dev/shm runtime (a plain unlink orphans the latter)
my ($rmrc) = run_program(build_dir() . '/pstm', 'rm', $file);
is($rmrc, 0, 'pstm rm of the durable region');

done_testing();
