#!/usr/bin/perl
# layering.t - the stack of docs/design.md section 0 is held by the code:
# every file of lib/ belongs to a layer of the table, and includes only
# headers of its own layer or of layers below (a "boundary only" layer:
# just the headers its row names).
use strict;
use warnings;
use File::Find;
use Test::More;

my $root = $ENV{PSTM_SRC} // '.';
open(my $d, '<', "$root/docs/design.md") or die "docs/design.md: $!";
my $text = do { local $/; <$d> };
close $d;
my ($tab) = $text =~ /<!-- layers: begin -->(.*?)<!-- layers: end -->/s
	or BAIL_OUT('no layer table in docs/design.md');

my (%layer, %only);    # module -> layer; layer -> allowed headers
for my $row (split /\n/, $tab) {
	my @c = map { s/^\s+|\s+$//gr } split /\|/, $row;
	next unless @c >= 5 && $c[1] =~ /^\d+$/;
	my $n = $c[1];
	# "x.h" names that header; "x" both x.c and x.h; "dir" a folder
	$layer{$_} = $n for split /,\s*/, $c[3];
	$only{$n} = { map { $_ => 1 } $c[4] =~ /([\w\/]+\.h)/g }
		if $c[4] =~ /boundary only/;
}
ok(keys %layer > 10, 'the table names the modules of lib/');

# a file's module: lib/ds/map.c -> ds/map; lib/testing/x.c -> testing
sub module {
	my ($rel) = @_;
	return $rel if exists $layer{$rel};
	(my $m = $rel) =~ s/\.[ch]$//;
	return $m if exists $layer{$m};
	(my $dir = $rel) =~ s{/[^/]*$}{};
	return $dir if $dir ne $rel && exists $layer{$dir};
	return undef;
}

my @files;
find(sub { push @files, $File::Find::name if /\.[ch]$/ }, "$root/lib");
for my $path (sort @files) {
	(my $rel = $path) =~ s{^\Q$root\E/lib/}{};
	my $m = module($rel);
	ok(defined $m, "lib/$rel is in the layer table") or next;
	my $n = $layer{$m};
	open(my $fh, '<', $path) or die "$path: $!";
	my @bad;
	while (<$fh>) {
		next unless /^\s*#\s*include\s+"([^"]+)"/;
		my $h = $1;
		(my $dir = $rel) =~ s{[^/]*$}{};
		my $hrel = -e "$root/lib/$dir$h" ? "$dir$h"
			 : -e "$root/lib/$h" ? $h : undef;
		next unless defined $hrel;    # public header (include/)
		my $hm = module($hrel);
		next if defined $hm && $hm eq $m;
		if (!defined $hm) {
			push @bad, "$h (in no layer)";
		} elsif ($layer{$hm} > $n) {
			push @bad, "$h (layer $layer{$hm})";
		} elsif ($only{$n} && $layer{$hm} < $n && !$only{$n}{$hrel}) {
			push @bad, "$h (not in the boundary of layer $n)";
		}
	}
	close $fh;
	ok(!@bad, "lib/$rel (layer $n) includes nothing above it")
		or diag("includes @bad");
}
done_testing();
