# Draws docs/img/bench-*.png from the sweeps' CSVs (bench/report/run_report.sh calls it):
#   gnuplot -e "dir='build/bench-report'; img='docs/img'" bench/report/plots.gp
# Columns are read by name (the CSV headers of lm-bench, bench/bench_util.hpp); rows whose status
# is not "ok" (timeouts, no memory) are skipped. A missing CSV leaves its plot out.
if (!exists("dir")) dir = "build/bench-report"
if (!exists("img")) img = "docs/img"

set datafile separator ","
set datafile columnheaders
set terminal pngcairo size 1200,480 enhanced font "DejaVu Sans,10" linewidth 1.5
set grid
set key inside top left vertical box opaque
set offsets 0, 0, graph 0.4, 0  # room above the curves for the key (autoscaled y only)

ok(c) = (strcol("status") eq "ok") ? column(c) : NaN
wl(w, c) = (strcol("status") eq "ok" && strcol("workload") eq w) ? column(c) : NaN
# Points measured while the core was taken by other processes (fewer than 3 clean trials of
# the path: the figure is the fastest third of all trials, inflated): circled in red.
noisy(c) = (strcol("status") eq "ok" && column("clean_trials") < 3) ? column(c) : NaN
noisy_title = "< 3 clean trials (core preempted)"
# A CSV with at least one "ok" row (gnuplot stops at a plot whose points are all undefined).
exists_file(f) = system("cat '" . f . "' 2>/dev/null | grep -c ',ok,'") + 0 > 0
# The value of column `name` in the first row of CSV `f` (e.g. the worker's burst).
first_value(f, name) = system("awk -F, -v n=" . name . " 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i } NR == 2 { print $c; exit }' '" . f . "' 2>/dev/null")
meta = system("test -s '" . dir . "/machine.txt' && sed -n 's/^plot-note: //p' '" . dir . "/machine.txt' | head -1")

# ---- fast path vs cached MOs ------------------------------------------------------------------
f = dir . "/fastpath-mos.csv"
if (exists_file(f)) {
    set output img . "/bench-fastpath-mos.png"
    set multiplot layout 1,2 title "Fast path, encap vs cached MOs (one worker core, net\\_null, 64-byte frames, burst " . first_value(f, "burst") . ")\n{/*0.8 " . meta . "}"
    set logscale x
    set xlabel "cached MOs (cache = MOs + 10 %, at least 65 536 entries)"
    set format x "10^{%L}"
    set ylabel "TSC cycles per packet"
    set yrange [0:*]
    set title "cycles per packet"
    plot f using "mos":(ok("path_cycles")) with linespoints pt 7 title "encap (rx + refill + path + tx)", \
         f using "mos":(ok("delta_cycles")) with linespoints pt 5 title "path only (encap - baseline)", \
         f using "mos":(ok("baseline_cycles")) with linespoints pt 9 title "baseline (rx + refill + tx)", \
         f using "mos":(noisy("path_cycles")) with points pt 6 ps 2.5 lc rgb "red" title noisy_title
    set ylabel "Mpps"
    set title "packets per second, one core"
    plot f using "mos":(ok("path_mpps")) with linespoints pt 7 title "encap"
    unset multiplot
    unset logscale x
    set format x "% h"
}

# ---- fast path vs burst size (net_ring: the NIC holds N packets per rx_burst) -------------------
f = dir . "/fastpath-burst.csv"
if (exists_file(f)) {
    set output img . "/bench-fastpath-burst.png"
    set multiplot layout 1,2 title "Fast path vs packets per rx\\_burst (one worker core, net\\_ring, 10k MOs / 1k attached, 64-byte frames)\n{/*0.8 " . meta . "}"
    kburst = system("awk -F, 'NR > 1 && $6 > m { m = $6 } END { print m }' '" . f . "'") + 0
    set logscale x 2
    set xrange [0.75:kburst * 1.35]
    set xtics (1, 2, 4, 8, 16, 32, 64, 128)
    set xlabel sprintf("packets per rx\\_burst (the worker asks for %d)", kburst)
    set ylabel "TSC cycles per packet"
    set yrange [0:*]
    set title "cycles per packet"
    set key top right
    plot f using "burst":(wl("encap", "path_cycles")) with linespoints pt 7 title "encap", \
         f using "burst":(wl("decap", "path_cycles")) with linespoints pt 5 title "decap", \
         f using "burst":(wl("encap", "baseline_cycles")) with linespoints pt 9 dt 2 title "baseline (access frames)", \
         f using "burst":(wl("decap", "baseline_cycles")) with linespoints pt 11 dt 2 title "baseline (LM frames)", \
         f using "burst":(noisy("path_cycles")) with points pt 6 ps 2.5 lc rgb "red" title noisy_title
    set ylabel "Mpps"
    set title "packets per second, one core"
    set key top left
    plot f using "burst":(wl("encap", "path_mpps")) with linespoints pt 7 title "encap", \
         f using "burst":(wl("decap", "path_mpps")) with linespoints pt 5 title "decap"
    unset multiplot
    unset logscale x
    set xrange [*:*]
    set xtics autofreq
}

# ---- fast path vs packet size -----------------------------------------------------------------------
f = dir . "/fastpath-size.csv"
if (exists_file(f)) {
    set output img . "/bench-fastpath-size.png"
    set multiplot layout 1,2 title "Fast path vs packet size (one worker core, net\\_null, 10k MOs / 1k attached, burst " . first_value(f, "burst") . ")\n{/*0.8 " . meta . "}"
    set xlabel "access frame, bytes without FCS (LM frames: + 52..72)"
    set xrange [0:1600]
    set xtics (64, 256, 512, 1024, 1514)
    set ylabel "TSC cycles per packet"
    set yrange [0:*]
    set title "cycles per packet"
    plot f using "frame":(wl("encap", "path_cycles")) with linespoints pt 7 title "encap", \
         f using "frame":(wl("decap", "path_cycles")) with linespoints pt 5 title "decap", \
         f using "frame":(wl("encap", "baseline_cycles")) with linespoints pt 9 dt 2 title "baseline (access frames)", \
         f using "frame":(wl("decap", "baseline_cycles")) with linespoints pt 11 dt 2 title "baseline (LM frames)", \
         f using "frame":(noisy("path_cycles")) with points pt 6 ps 2.5 lc rgb "red" title noisy_title
    set title "packets and bits per second, one core"
    set ylabel "Mpps"
    set y2label "Gbit/s of access frames (encap in, decap out)"
    set y2tics
    set y2range [0:*]
    set ytics nomirror
    plot f using "frame":(wl("encap", "path_mpps")) with linespoints pt 7 title "encap Mpps", \
         f using "frame":(wl("decap", "path_mpps")) with linespoints pt 5 title "decap Mpps", \
         f using "frame":(wl("encap", "path_mpps") * column("frame") * 8 / 1000) axes x1y2 with linespoints pt 6 dt 3 title "encap Gbit/s", \
         f using "frame":(wl("decap", "path_mpps") * column("frame") * 8 / 1000) axes x1y2 with linespoints pt 4 dt 3 title "decap Gbit/s"
    unset multiplot
    unset y2tics
    unset y2label
    set ytics mirror
    set xrange [*:*]
    set xtics autofreq
}

# ---- fast path per inner / outer family, and 1 vs 2 workers --------------------------------------------
f = dir . "/fastpath-family.csv"
g = dir . "/fastpath-workers.csv"
if (exists_file(f) || exists_file(g)) {
    set output img . "/bench-fastpath-family-workers.png"
    set multiplot layout 1,2 title "Fast path per IP family and per number of workers (net\\_null, 10k MOs / 1k attached, 64-byte frames)\n{/*0.8 " . meta . "}"
    set style fill solid 0.6 border -1
    set boxwidth 0.35
    set yrange [0:*]
    set key inside top right horizontal
    set offsets 0, 0, graph 0.7, 0  # room for the key above the bars
    if (exists_file(f)) {
        fx(s) = (strcol("inner") eq "6") + 2 * (strcol("outer") eq "6")
        set xrange [-0.6:3.6]
        set xtics ("4in4" 0, "6in4" 1, "4in6" 2, "6in6" 3)
        set xlabel "inner in outer family (one kind per run)"
        set ylabel "TSC cycles per packet"
        set title "cycles per packet, one worker core"
        plot f using (fx(0) - 0.18):(wl("encap", "path_cycles")) with boxes title "encap", \
             f using (fx(0) + 0.18):(wl("decap", "path_cycles")) with boxes title "decap", \
             f using (fx(0) - 0.18):(wl("encap", "path_cycles")):(sprintf("%.0f", wl("encap", "path_cycles"))) with labels offset 0,0.7 notitle, \
             f using (fx(0) + 0.18):(wl("decap", "path_cycles")):(sprintf("%.0f", wl("decap", "path_cycles"))) with labels offset 0,0.7 notitle, \
             f using (fx(0) - 0.18):(wl("encap", "baseline_cycles")) with points pt 9 ps 1.5 lc rgb "black" title "baseline (access frames)", \
             f using (fx(0) + 0.18):(wl("decap", "baseline_cycles")) with points pt 11 ps 1.5 lc rgb "black" title "baseline (LM frames)", \
             f using (fx(0) + (strcol("workload") eq "decap" ? 0.18 : -0.18)):(noisy("path_cycles")) with points pt 6 ps 2.5 lc rgb "red" title noisy_title
    }
    if (exists_file(g)) {
        set xrange [0.4:2.6]
        set xtics ("1 worker (lcore 0)" 1, "2 workers (lcores 0, 1)" 2)
        set xlabel "workers, one rx/tx queue each on every port (no control lcore)"
        set ylabel "Mpps, all workers"
        set title "aggregate packets per second"
        plot g using (column("workers") - 0.18):(wl("encap", "path_mpps")) with boxes title "encap", \
             g using (column("workers") + 0.18):(wl("decap", "path_mpps")) with boxes title "decap", \
             g using (column("workers") - 0.18):(wl("encap", "path_mpps")):(sprintf("%.1f", wl("encap", "path_mpps"))) with labels offset 0,0.7 notitle, \
             g using (column("workers") + 0.18):(wl("decap", "path_mpps")):(sprintf("%.1f", wl("decap", "path_mpps"))) with labels offset 0,0.7 notitle, \
             g using (column("workers") + (strcol("workload") eq "decap" ? 0.18 : -0.18)):(noisy("path_mpps")) with points pt 6 ps 2.5 lc rgb "red" title noisy_title
    }
    unset multiplot
    set xrange [*:*]
    set xtics autofreq
    set style fill empty
    set key inside top left vertical
    set offsets 0, 0, graph 0.4, 0
}

# ---- resolve latency vs DHT nodes ---------------------------------------------------------------------
f = dir . "/resolve.csv"
if (exists_file(f)) {
    set terminal pngcairo size 800,560 enhanced font "DejaVu Sans,10" linewidth 1.5
    set key inside top left vertical box opaque
    set output img . "/bench-resolve.png"
    set title "LM directory: miss -> mapping in the worker's cache, vs DHT nodes\n(in-process OpenDHT on 127.0.0.1, sequential lookups)\n{/*0.8 " . meta . "}"
    set logscale x 2
    set xrange [6:340]
    set xtics (8, 32, 128, 256)
    set xlabel "DHT nodes (+ the router's)"
    set logscale y
    set yrange [0.1:1000]  # room above for the key
    set ylabel "latency, ms"
    plot f using "nodes":(ok("p50_us") / 1000) with linespoints pt 7 title "p50", \
         f using "nodes":(ok("p90_us") / 1000) with linespoints pt 5 title "p90", \
         f using "nodes":(ok("p99_us") / 1000) with linespoints pt 9 title "p99", \
         2 with lines dt 2 lc rgb "dark-green" title "target p99 2 ms (issue)", \
         16.7 with lines dt 4 lc rgb "dark-red" title "MoHiD query 16.7 ms"
    unset logscale
    set xrange [*:*]
    set yrange [*:*]
    set xtics autofreq
}

# ---- handover vs correspondent ARs -------------------------------------------------------------------------
f = dir . "/handover.csv"
if (exists_file(f)) {
    set terminal pngcairo size 800,560 enhanced font "DejaVu Sans,10" linewidth 1.5
    set key inside top left vertical box opaque
    set output img . "/bench-handover.png"
    set title "Handover: attach on the new AR -> every correspondent AR's cache updated, vs ARs\n(N control planes + N OpenDHT nodes in one process on 127.0.0.1)\n{/*0.8 " . meta . "}"
    set logscale x
    set xrange [7:450]
    set xtics (10, 30, 100, 300)
    set xlabel "access routers (each one watches the MO)"
    set logscale y
    set yrange [1:20000]  # room above for the key
    set ylabel "time until the last AR is updated, ms"
    plot f using "ars":(ok("p50_ms")) with linespoints pt 7 title "p50", \
         f using "ars":(ok("p99_ms")) with linespoints pt 9 title "p99 (of the moves; = max under 100 moves)", \
         f using "ars":(ok("first_p50_ms")) with linespoints pt 4 dt 3 title "first AR updated, p50", \
         10 with lines dt 2 lc rgb "dark-green" title "target p99 10 ms at 100 ARs (issue)", \
         115.9 with lines dt 4 lc rgb "dark-red" title "MoHiD handover 115.9 ms"
    unset logscale
}
