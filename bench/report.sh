#!/bin/sh
# bench/report.sh RESULTS.CSV OUTDIR [md] - table of medians with ratios to
# mutex-global (same workload, size, procs) and to the floor (same
# workload and size, 1 process); one PNG bar chart per workload.
set -u
csv=$1
out=$2
mkdir -p "$out"
# fixed order and colours: baselines in greys/greens/blues, pstm in reds;
# the relaxed-durability systems (lmdb-nosync, sqlite-normal, pstm-relaxed)
# sit next to their family's durable one
colors="#555555 #e69f00 #f0c060 #1b7837 #7fbf7b #4d9221 #2166ac #92c5de #4393c3 #8c510a #d7191c #f4a582 #b2182b #762a83 #67001f #fdae61 #053061"
systems="floor mutex-global mutex-striped lmdb-shm lmdb-disk lmdb-nosync sqlite-shm sqlite-disk sqlite-normal pmemobj pstm-shm pstm-file pstm-relaxed pstm-pmem pstm-queue pstm-run sqlite-queue"

# "md": markdown tables of medians, one per workload (systems x size/P)
if [ "${3:-}" = md ]; then
	awk -F, -v systems="$systems" '
	function human(v) {
		if (v >= 1e6) return sprintf("%.2fM", v / 1e6)
		if (v >= 1e3) return sprintf("%.1fk", v / 1e3)
		return sprintf("%.0f", v)
	}
	NR == 1 { next }
	{
		c = sprintf("%012d %03d", $3, $4)  # sorts by size, then procs
		if (!(c in seen)) {
			seen[c] = 1; cfg[++nc] = c
			name[c] = ($3 >= 1000000 ? ($3 / 1000000) "M" : $3) " P" $4
		}
		v[$1, c, $2] = human($5) ($8 == "ok" ? "" : " FAIL")
	}
	END {
		for (i = 2; i <= nc; i++)
			for (j = i; j > 1 && cfg[j - 1] > cfg[j]; j--) {
				t = cfg[j]; cfg[j] = cfg[j - 1]; cfg[j - 1] = t
			}
		ns = split(systems, sys, " ")
		nw = split("bank readmostly intset tasktree", wl, " ")
		for (w = 1; w <= nw; w++) {
			printf "%s (tx/s, median of runs)\n\n| system |", wl[w]
			for (i = 1; i <= nc; i++) printf " %s |", name[cfg[i]]
			printf "\n|---|"
			for (i = 1; i <= nc; i++) printf "--:|"
			printf "\n"
			for (s = 1; s <= ns; s++) {
				any = 0
				for (i = 1; i <= nc; i++)
					any += ((wl[w], cfg[i], sys[s]) in v)
				if (!any)
					continue  # not run on this workload
				printf "| %s |", sys[s]
				for (i = 1; i <= nc; i++)
					printf " %s |", ((wl[w], cfg[i], sys[s]) in v) ? v[wl[w], cfg[i], sys[s]] : "-"
				printf "\n"
			}
			printf "\n"
		}
	}' "$csv"
	exit 0
fi

awk -F, -v systems="$systems" '
function human(v) {
	if (v >= 1e6) return sprintf("%.2fM", v / 1e6)
	if (v >= 1e3) return sprintf("%.1fk", v / 1e3)
	return sprintf("%.0f", v)
}
function isort(a, n,    i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
}
function ratio(v, base) {
	if (base == "" || base <= 0) return "-"
	return sprintf("%.3g", v / base)
}
NR == 1 { next }
{
	key = $1 SUBSEP $3 SUBSEP $4
	med[key, $2] = $5; lo[key, $2] = $6; hi[key, $2] = $7; inv[key, $2] = $8
	if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
	if (!(($3 + 0) in sz)) { sz[$3 + 0] = 1; sizes[++nz] = $3 + 0 }
	if (!(($4 + 0) in pr)) { pr[$4 + 0] = 1; procs[++np] = $4 + 0 }
	if ($8 != "ok") bad++
}
END {
	ns = split(systems, sys, " ")
	nw = split("bank readmostly intset tasktree", wl, " ")
	printf "%-10s %8s %2s  %-13s %10s %10s %10s %9s %9s  %s\n", \
	    "workload", "size", "P", "system", "tx/s", "min", "max", \
	    "/mutex-g", "/floor", "invariant"
	isort(sizes, nz)
	isort(procs, np)
	for (w = 1; w <= nw; w++)
	for (z = 1; z <= nz; z++)
	for (p = 1; p <= np; p++) {
		key = wl[w] SUBSEP sizes[z] SUBSEP procs[p]
		if (!(key in seen)) continue
		split(key, k, SUBSEP)
		for (s = 1; s <= ns; s++) {
			if (!((key, sys[s]) in med)) continue
			v = med[key, sys[s]]
			printf "%-10s %8s %2s  %-13s %10s %10s %10s %9s %9s  %s\n", \
			    k[1], k[2], k[3], sys[s], human(v), \
			    human(lo[key, sys[s]]), human(hi[key, sys[s]]), \
			    ratio(v, med[key, "mutex-global"]), \
			    ratio(v, med[k[1], k[2], 1, "floor"]), \
			    inv[key, sys[s]]
		}
		print ""
	}
	if (bad) printf "%d configuration(s) FAILED their invariant\n", bad
}' "$csv"

command -v gnuplot >/dev/null 2>&1 || { echo "no gnuplot: plots skipped"; exit 0; }

for w in bank readmostly intset tasktree; do
	dat=$out/$w.dat
	# rows: size/procs configurations; columns: systems ("-" = not run)
	awk -F, -v w="$w" -v systems="$systems" '
	NR == 1 || $1 != w { next }
	{
		c = $3 "/P" $4; if ($3 >= 1000000) c = ($3 / 1000000) "M/P" $4
		if (!(c in seen)) { seen[c] = 1; cfg[++nc] = c }
		v[c, $2] = $5
	}
	END {
		ns = split(systems, sys, " ")
		printf "config"
		for (s = 1; s <= ns; s++) printf " %s", sys[s]
		printf "\n"
		for (i = 1; i <= nc; i++) {
			printf "%s", cfg[i]
			for (s = 1; s <= ns; s++)
				printf " %s", ((cfg[i], sys[s]) in v && v[cfg[i], sys[s]] > 0) ? v[cfg[i], sys[s]] : "-"
			printf "\n"
		}
	}' "$csv" > "$dat"
	# plot only the systems this run has figures for (quick skips some),
	# each in its fixed colour
	plot=$(awk -v colors="$colors" -v dat="$dat" '
	NR == 1 { nf = NF }
	NR > 1 { for (j = 2; j <= NF; j++) if ($j != "-") has[j] = 1 }
	END {
		split(colors, col, " ")
		for (j = 2; j <= nf; j++) {
			if (!(j in has)) continue
			printf "%s\"%s\" using %d%s title columnheader(%d) lc rgb \"%s\"", \
			    n ? ", " : "plot ", dat, j, n ? "" : ":xtic(1)", j, col[j - 1]
			n++
		}
		printf "\n"
	}' "$dat")
	[ -n "$plot" ] || continue
	gnuplot <<GP || echo "gnuplot failed for $w" >&2
set terminal pngcairo size 1200,600 noenhanced
set output "$out/$w.png"
set title "pstm bench: $w (tx/s, log scale; size/processes)"
set datafile missing "-"
set style data histogram
set style histogram clustered gap 2
set style fill solid 0.9 border -1
set logscale y
set format y "%.0s%c"
set grid ytics
set key outside right
set ylabel "transactions per second"
$plot
GP
done
ls "$out"/*.png 2>/dev/null | sed 's/^/plot: /'
