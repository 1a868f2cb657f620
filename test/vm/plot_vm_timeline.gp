# Timeline plot of test/vm/demo_vm_migration.py (--plot PNG): ping RTT per sequence number around
# each migration, IPv4 and IPv6, with the VM's downtime shaded.
#
#   gnuplot -e "load 'DATADIR/params.gp'" test/vm/plot_vm_timeline.gp
#
# params.gp (written by the demo) sets: out (PNG path), datadir, nmoves, maintitle, interval_ms,
# wan, and per migration K: stopK / resumeK (the sequence numbers cn was sending when the guest
# stopped on the source / resumed on the destination, QMP STOP and RESUME), beginK (migrate-begin
# sent to the old AR), convK (AR1's cache holds the new AR's locator), x0_K / x1_K (x range),
# guestK (the guest's first own frame after RESUME, from the destination tap: under TCG the
# destination QEMU first re-translates the guest's code), titleK. Data: DATADIR/rtt4.dat, rtt6.dat ("seq send_unix rtt_ms", rtt NaN when unanswered) and
# lost4.dat, lost6.dat ("seq 0": requests never answered, drawn on the x axis; lost4 / lost6 in
# params.gp count them).
#
# A request sent at sequence s reaches the guest about one WAN delay (wan ms) later, so the
# requests that met the paused guest are those sent up to `wan` sequence numbers before the shaded
# band; they come back late (held by the old AR, forwarded to the new one), not lost.

set terminal pngcairo size 1280, (360 * nmoves + 60) font "sans,10"
set output out
set multiplot layout nmoves, 1 title maintitle font "sans,12"
set grid lc rgb "#dddddd"
set key top left box opaque
set xlabel sprintf("ping sequence number at cn (one request per family every %g ms)", interval_ms)
set ylabel "round-trip time (ms)"
set yrange [0:*]
set datafile missing "nan"
do for [k = 1:nmoves] {
    stop = value(sprintf("stop%d", k))
    resume = value(sprintf("resume%d", k))
    begin = value(sprintf("begin%d", k))
    conv = value(sprintf("conv%d", k))
    guest = value(sprintf("guest%d", k))
    set xrange [value(sprintf("x0_%d", k)) : value(sprintf("x1_%d", k))]
    set title value(sprintf("title%d", k))
    set object 1 rect from stop, graph 0 to resume, graph 1 fc rgb "#f4b6b0" fs solid 0.7 noborder behind
    set object 2 rect from resume, graph 0 to guest, graph 1 fc rgb "#d9d9d9" fs solid 0.6 noborder behind
    set arrow 1 from begin, graph 0 to begin, graph 1 nohead lc rgb "#1a73e8" dt 2 lw 1.5
    set arrow 2 from conv, graph 0 to conv, graph 1 nohead lc rgb "#188038" dt 3 lw 1.5
    set label 1 "VM downtime (STOP -> RESUME)" at stop, graph 0.97 right offset -0.5, 0 tc rgb "#b3261e"
    set label 4 "guest silent after RESUME (TCG re-translates its code)" at guest, graph 0.93 left offset 0.5, 0 tc rgb "#555555"
    set label 2 "migrate-begin at the old AR" at begin, graph 0.84 right offset -0.5, 0 tc rgb "#1a73e8"
    set label 3 "AR1 uses the new AR" at conv, graph 0.75 left offset 0.5, 0 tc rgb "#188038"
    cmd = "plot datadir.'/rtt4.dat' using 1:3 with points pt 7 ps 0.35 lc rgb '#1f77b4' title 'IPv4 echo', " . \
          "datadir.'/rtt6.dat' using 1:3 with points pt 7 ps 0.35 lc rgb '#e8710a' title 'IPv6 echo'"
    if (lost4 > 0) { cmd = cmd . ", datadir.'/lost4.dat' using 1:2 with points pt 2 ps 1.5 lw 2 lc rgb '#d93025' title 'IPv4 lost'" }
    if (lost6 > 0) { cmd = cmd . ", datadir.'/lost6.dat' using 1:2 with points pt 3 ps 1.5 lw 2 lc rgb '#a142f4' title 'IPv6 lost'" }
    eval cmd
    unset object 1
    unset object 2
    unset label 4
    unset arrow 1
    unset arrow 2
    unset label 1
    unset label 2
    unset label 3
}
unset multiplot
